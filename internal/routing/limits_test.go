package routing

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/portico/portico/internal/store"
)

func TestClip(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
		cut  bool
	}{
		{"abc", 3, "abc", false},
		{"abcd", 3, "abc", true},
		{"ab€", 4, "ab", true},                // € is 3 bytes: not cut inside
		{"ab€d", 5, "ab€", true},              // fits whole
		{"a😀", 3, "a", true},                  // 4-byte rune
		{"\xff\xff\xff", 2, "\xff\xff", true}, // invalid bytes stay, cut anywhere
		{"", 0, "", false},
	}
	for _, tt := range tests {
		got, cut := clip(tt.s, tt.n)
		if got != tt.want || cut != tt.cut {
			t.Errorf("clip(%q, %d) = %q, %v; want %q, %v", tt.s, tt.n, got, cut, tt.want, tt.cut)
		}
	}
	for n := range 12 {
		s := strings.Repeat("é😀", 3)
		if c, _ := clip(s, n); !utf8.ValidString(c) || len(c) > n {
			t.Errorf("clip(%q, %d) = %q: invalid or too long", s, n, c)
		}
	}
}

// names returns a list of n distinct valid names.
func names(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "h%d.test ", i)
	}
	return b.String()
}

func TestLimits(t *testing.T) {
	E := SeverityError
	long := strings.Repeat("a", 60) + "."
	tests := []struct {
		name   string
		c      store.Container
		accept bool
		probs  []wantProblem
	}{
		{name: "100 names accepted", c: ctr("web", vhost(names(100))), accept: true},
		{name: "100 names with duplicates accepted", c: ctr("web", vhost(names(100)+names(100))), accept: true},
		{name: "101 names rejected", c: ctr("web", vhost(names(101))),
			probs: []wantProblem{{E, LabelVhost, "more than 100 host names"}}},
		{name: "101 certificate names rejected", c: ctr("web", vhost(names(100)), withEnv(EnvLetsEncryptHost, names(101))),
			probs: []wantProblem{{E, EnvLetsEncryptHost, "more than 100 host names"}}},
		{name: "list at the byte limit is read", c: ctr("web", vhost("a.test"+strings.Repeat(" ", MaxListBytes-6))), accept: true},
		{name: "list over the byte limit", c: ctr("web", vhost("a.test"+strings.Repeat(" ", MaxListBytes-5))),
			probs: []wantProblem{{E, LabelVhost, fmt.Sprintf("value is %d bytes, over the limit of %d", MaxListBytes+1, MaxListBytes)}}},
		{name: "over-long vhost label does not fall through to VIRTUAL_HOST",
			c:     ctr("web", vhost(strings.Repeat("a", MaxListBytes+1)), withEnv(EnvVirtualHost, "b.test")),
			probs: []wantProblem{{E, LabelVhost, "over the limit"}}},
		{name: "scalar over its limit", c: ctr("web", labels(LabelVhost, "a.test", LabelPort, strings.Repeat("8", MaxValueBytes+1))),
			probs: []wantProblem{{E, LabelPort, "over the limit of 4096"}}},
		{name: "100 long names fit the list limit", c: ctr("web", vhost(strings.Repeat("*."+strings.Repeat(long, 4)[:240]+"x.test, ", 1))), accept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, probs := ParseService(tt.c, Options{Network: "proxy"})
			if got := len(svc.Hosts) > 0; got != tt.accept {
				t.Errorf("accepted = %v, want %v: %v", got, tt.accept, probs)
			}
			checkProblems(t, probs, tt.probs)
		})
	}

	// The worst legitimate list: 100 distinct names of 253 bytes with a
	// wildcard and ", " each fits MaxListBytes.
	var b strings.Builder
	for i := range MaxNames {
		base := fmt.Sprintf("%03d.", i) + strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 50) + ".test"
		b.WriteString("*." + base + ", ") // 253 bytes a name
	}
	if b.Len() > MaxListBytes {
		t.Fatalf("100 maximal names take %d bytes, over MaxListBytes %d", b.Len(), MaxListBytes)
	}
	svc, probs := ParseService(ctr("web", vhost(b.String())), Options{Network: "proxy"})
	if len(svc.Hosts) != MaxNames || len(probs) > 0 {
		t.Errorf("100 maximal names: %d hosts, problems %v", len(svc.Hosts), probs)
	}
}

func TestProblemsBoundedAndHoldOnlyTheItem(t *testing.T) {
	var items []string
	for i := range 100 {
		items = append(items, fmt.Sprintf("bad%d_%s", i, strings.Repeat("x", 200)))
	}
	value := strings.Join(items, ",")
	c := ctr("web", vhost(value))
	for i := range 50 {
		c.Labels[fmt.Sprintf("portico.unknown%02d", i)] = strings.Repeat("v", 1000)
	}
	_, probs := ParseService(c, Options{Network: "proxy"})
	if len(probs) != MaxProblems+1 {
		t.Fatalf("%d problems, want %d plus a summary", len(probs), MaxProblems)
	}
	sum := probs[len(probs)-1]
	if sum.More != 1+50 || sum.Severity != SeverityError || !strings.Contains(sum.Message, fmt.Sprint(sum.More)+" more problems") {
		t.Errorf("summary %+v", sum)
	}
	for _, p := range probs[:MaxProblems] {
		if p.Severity != SeverityError {
			t.Errorf("a warning was kept before the errors: %v", p.Error())
		}
		if len(p.Value) != 128 || !strings.HasPrefix(p.Value, "bad") || !strings.Contains(value, p.Value) || p.ValueBytes < 200 || p.ValueBytes > 210 {
			t.Errorf("problem value %q (%d bytes of %d) is not one cut item", p.Value, len(p.Value), p.ValueBytes)
		}
		if s := p.Error(); len(s) > 512 || !strings.Contains(s, fmt.Sprintf("… (%d bytes)", p.ValueBytes)) {
			t.Errorf("problem text %d bytes, or not marked cut: %s", len(s), s)
		}
	}
	// Deterministic: the same record gives the same problems.
	_, again := ParseService(c, Options{Network: "proxy"})
	for i := range probs {
		if probs[i] != again[i] {
			t.Fatalf("problems differ between runs:\n%v\n%v", probs[i], again[i])
		}
	}
}

func TestLimitProblemsMergesBuildAndParse(t *testing.T) {
	// 20 containers all claiming the same 100 vhosts with conflicting
	// settings: each later one gets 100 claim errors from Build, bounded.
	var cs []store.Container
	for i := range 20 {
		proto := ProtoHTTP
		if i > 0 {
			proto = ProtoGRPC
		}
		cs = append(cs, ctr(fmt.Sprintf("c%02d", i), labels(LabelVhost, names(100), LabelProtocol, proto),
			withIP(fmt.Sprintf("172.18.0.%d", i+2))))
	}
	res := Build(cs, Options{Network: "proxy"})
	per := map[string]int{}
	more := map[string]int{}
	for _, p := range res.Problems {
		per[p.Container]++
		more[p.Container] += p.More
	}
	if len(per) != 19 {
		t.Fatalf("problems for %d containers, want 19: %v", len(per), per)
	}
	for name, n := range per {
		if n != MaxProblems+1 || more[name] != 100-MaxProblems {
			t.Errorf("%s: %d problems, %d more; want %d and %d", name, n, more[name], MaxProblems+1, 100-MaxProblems)
		}
	}
	if len(res.Routes) != 100 {
		t.Errorf("%d routes, want 100", len(res.Routes))
	}
}
