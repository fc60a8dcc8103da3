package routing

import (
	"strings"
	"testing"

	"github.com/portico/portico/internal/store"
)

func TestAllowList(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		allow   []string // "node name"
		deny    []string
	}{
		{name: "empty allows everything", entries: nil, allow: []string{"n1 a.test", "n2 *.b.example"}},
		{name: "blank entries are no entries", entries: []string{"", " "}, allow: []string{"n1 a.test"}},
		{name: "domain and subdomains for every node", entries: []string{"Example.COM."},
			allow: []string{"n1 example.com", "n2 www.example.com", "n1 a.b.example.com", "n1 *.example.com", "n1 *.a.example.com"},
			deny:  []string{"n1 example.org", "n1 badexample.com", "n1 example.com.evil.test", "n1 com"}},
		{name: "subdomains only", entries: []string{"*.example.org"},
			allow: []string{"n1 a.example.org", "n1 *.example.org", "n1 *.a.example.org"},
			deny:  []string{"n1 example.org", "n1 xexample.org"}},
		{name: "per node", entries: []string{"node1=one.test", "node2=*.two.test", "shared.test"},
			allow: []string{"node1 one.test", "node1 a.one.test", "node2 a.two.test", "node1 shared.test", "node2 x.shared.test", "node3 shared.test"},
			deny:  []string{"node1 a.two.test", "node2 one.test", "node2 two.test", "node3 one.test"}},
		{name: "a node no entry covers claims nothing", entries: []string{"node1=one.test"},
			allow: []string{"node1 one.test"}, deny: []string{"node2 one.test", "node2 other.test"}},
		{name: "star", entries: []string{"node1=*", "node2=two.test"},
			allow: []string{"node1 anything.example", "node1 *.x.test", "node2 two.test"}, deny: []string{"node2 three.test"}},
		{name: "IDN entry in punycode", entries: []string{"Bücher.example"},
			allow: []string{"n xn--bcher-kva.example", "n a.xn--bcher-kva.example"}, deny: []string{"n bucher.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAllowList(tt.entries)
			if err != nil {
				t.Fatal(err)
			}
			for _, nn := range tt.allow {
				node, name, _ := strings.Cut(nn, " ")
				if !a.Allows(node, name) {
					t.Errorf("%s may not claim %s", node, name)
				}
			}
			for _, nn := range tt.deny {
				node, name, _ := strings.Cut(nn, " ")
				if a.Allows(node, name) {
					t.Errorf("%s may claim %s", node, name)
				}
			}
		})
	}
}

func TestParseAllowListErrors(t *testing.T) {
	for _, e := range []string{"=a.test", "a b=x.test", "n=", "n=a.*.test", "a_b.test", "n=a.test;", "1.2.3.4", "**"} {
		if _, err := ParseAllowList([]string{"ok.test", e}); err == nil || !strings.Contains(err.Error(), e) {
			t.Errorf("entry %q: err %v, want one naming it", e, err)
		}
	}
}

func TestParseServiceAllowList(t *testing.T) {
	al, err := ParseAllowList([]string{"node1=*.tenant1.test", "node2=tenant2.test"})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Network: "proxy", Allowed: al}
	E := SeverityError
	tests := []struct {
		name   string
		labels map[string]string
		node   string
		accept bool
		probs  []wantProblem
	}{
		{name: "own names", labels: vhost("a.tenant1.test, *.b.tenant1.test"), node: "node1", accept: true},
		{name: "one foreign name rejects the container", labels: vhost("a.tenant1.test, a.tenant2.test"), node: "node1",
			probs: []wantProblem{{E, LabelVhost, `host name not allowed for node "node1" (--allowed-domains)`}}},
		{name: "legacy label too", labels: map[string]string{LegacyVhost: "tenant1.test"}, node: "node1",
			probs: []wantProblem{{E, LegacyVhost, "not allowed"}}},
		{name: "other node", labels: vhost("www.tenant2.test"), node: "node2", accept: true},
		{name: "unlisted node", labels: vhost("www.tenant2.test"), node: "node3",
			probs: []wantProblem{{E, LabelVhost, `not allowed for node "node3"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ctr("web", tt.labels, withNode(tt.node))
			svc, probs := ParseService(c, opts)
			if got := len(svc.Hosts) > 0; got != tt.accept {
				t.Errorf("accepted = %v, want %v (%v)", got, tt.accept, probs)
			}
			checkProblems(t, probs, tt.probs)
			for _, p := range probs {
				if p.Container != "web" || p.Value == "" || strings.Contains(p.Value, ",") {
					t.Errorf("problem does not name the container and the one name: %+v", p)
				}
			}
		})
	}
	// Build: the rejected tenant's container leaves the others' routes alone.
	res := Build([]store.Container{ctr("intruder", vhost("a.tenant2.test"), withNode("node1")),
		ctr("owner", vhost("a.tenant2.test"), withNode("node2"), withIP("172.18.0.9"))}, opts)
	if len(res.Routes) != 1 || res.Routes[0].Host != "a.tenant2.test" || len(res.Routes[0].Containers) != 1 || res.Routes[0].Containers[0] != "owner" {
		t.Errorf("routes %+v", res.Routes)
	}
}
