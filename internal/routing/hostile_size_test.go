package routing

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/portico/portico/internal/store"
)

// Sizes of the hostile corpus' size dimension: 1 KB to 1 MB, on both sides
// of every limit.
var hostileSizes = []int{1 << 10, 4<<10 + 1, 16 << 10, MaxListBytes, MaxListBytes + 1, 64 << 10, 256 << 10, 1 << 20}

// sizedShapes build a value of exactly n bytes.
var sizedShapes = []struct {
	name string
	gen  func(n int) string
}{
	{"invalid items", func(n int) string { return fill(n, func(i int) string { return fmt.Sprintf("h%d_x,", i) }) }},
	{"valid distinct names", func(n int) string { return fill(n, func(i int) string { return fmt.Sprintf("h%d.test,", i) }) }},
	{"one name repeated", func(n int) string { return fill(n, func(int) string { return "a.test " }) }},
	{"one token", func(n int) string { return strings.Repeat("a", n) }},
	{"control bytes and unicode", func(n int) string {
		return fill(n, func(i int) string { return []string{"\x00", "a.test;", "\u202e", "ａ．test", "\xff", "{"}[i%6] + "," })
	}},
}

// fill repeats item(i) until n bytes, cut to exactly n.
func fill(n int, item func(int) string) string {
	var b strings.Builder
	b.Grow(n + 64)
	for i := 0; b.Len() < n; i++ {
		b.WriteString(item(i))
	}
	return b.String()[:n]
}

// TestHostileSizes is the hostile corpus' size dimension: every shape at
// every size in every form is rejected or accepted safely, with bounded
// problems, and the bystander keeps its route.
func TestHostileSizes(t *testing.T) {
	for _, sh := range sizedShapes {
		for _, n := range hostileSizes {
			v := sh.gen(n)
			for _, f := range hostileForms() {
				c := victim(f, v, "172.18.0.2")
				checkHostile(t, c, f.key, v, false)
				_, probs := ParseService(c, Options{Network: "proxy"})
				checkBounded(t, probs)
				if n > valueLimit(f.key) && !hasError(probs) {
					t.Errorf("%s %s of %d bytes accepted", sh.name, f.key, n)
				}
				if t.Failed() {
					t.Fatalf("shape %q, %d bytes, form %s", sh.name, n, f.key)
				}
			}
		}
	}
	t.Run("many unknown labels", func(t *testing.T) {
		c := ctr("victim", vhost("victim.test"))
		for i := range 10000 {
			c.Labels[fmt.Sprintf("portico.x%d", i)] = strings.Repeat("v", 100)
		}
		res := Build([]store.Container{c, bystander()}, Options{Network: "proxy"})
		checkBounded(t, res.Problems)
		if len(res.Routes) != 2 {
			t.Errorf("routes %+v", res.Routes)
		}
	})
}

// allocated returns the bytes f allocates, the least of a few runs.
func allocated(f func()) uint64 {
	best := ^uint64(0)
	var a, b runtime.MemStats
	for range 3 {
		runtime.ReadMemStats(&a)
		f()
		runtime.ReadMemStats(&b)
		best = min(best, b.TotalAlloc-a.TotalAlloc)
	}
	return best
}

// TestHostileCostLinear is the invariant: Build of a record with a value of
// 2n bytes allocates at most 2.5x what n bytes does (plus a constant), for
// every shape from 1 KB to 1 MB, and the bystander's route is unaffected.
// No wall-clock assertion: allocation is what grew quadratically.
func TestHostileCostLinear(t *testing.T) {
	const slack = 16 << 10 // constant costs (maps, sorting) dominate tiny inputs
	for _, sh := range sizedShapes {
		for _, key := range []string{LabelVhost, EnvLetsEncryptHost, LabelPort} {
			f := hostileForm{key: key, env: key == EnvLetsEncryptHost}
			var prev uint64
			for n := 1 << 10; n <= 1<<20; n *= 2 {
				cs := []store.Container{victim(f, sh.gen(n), "172.18.0.2"), bystander()}
				var res Result
				got := allocated(func() { res = Build(cs, Options{Network: "proxy"}) })
				if prev > 0 && float64(got) > 2.5*float64(prev)+slack {
					t.Errorf("%s in %s: %d bytes allocate %d, %d bytes allocated %d: over 2.5x", sh.name, key, n, got, n/2, prev)
				}
				if got > 4<<20 {
					t.Errorf("%s in %s: %d bytes allocate %d, over 4 MiB", sh.name, key, n, got)
				}
				if len(res.Routes) == 0 || res.Routes[len(res.Routes)-1].Host != "bystander.test" && res.Routes[0].Host != "bystander.test" {
					t.Errorf("%s in %s, %d bytes: bystander route lost: %+v", sh.name, key, n, res.Routes)
				}
				prev = got
			}
		}
	}
}
