package routing

import (
	"fmt"
	"strings"
	"testing"

	"github.com/portico/portico/internal/store"
)

// hostileList returns a vhost list of about n bytes: short, invalid items
// ("a_b,"), the shape that costs most per byte before the caps.
func hostileList(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "h%d_x,", i)
	}
	return b.String()[:n]
}

// validList returns a list of about n bytes of distinct valid names.
func validList(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "h%d.test,", i)
	}
	return b.String()[:n]
}

// buildAndFormat is what a stage does with records per render: Build, then
// format every problem (logErrors, status).
func buildAndFormat(cs []store.Container) int {
	res := Build(cs, Options{Network: "proxy"})
	n := 0
	for _, p := range res.Problems {
		n += len(p.Error())
	}
	return n
}

var benchSizes = []struct {
	name string
	n    int
}{{"10KB", 10 << 10}, {"30KB", 30 << 10}, {"35KB", 35 << 10}, {"40KB", 40 << 10}, {"1MB", 1 << 20}}

// BenchmarkHostileVhostLabel: one container whose portico.vhost is a hostile
// list of the given size, beside a bystander; Build and format every problem.
func BenchmarkHostileVhostLabel(b *testing.B) {
	for _, shape := range []struct {
		name string
		gen  func(int) string
	}{{"invalid", hostileList}, {"valid", validList}} {
		for _, sz := range benchSizes {
			if sz.n > 40<<10 && testing.Short() {
				continue
			}
			cs := []store.Container{ctr("victim", vhost(shape.gen(sz.n))), bystander()}
			b.Run(shape.name+"/"+sz.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					buildAndFormat(cs)
				}
			})
		}
	}
}
