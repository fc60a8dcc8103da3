package routing

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/portico/portico/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// onNode puts a container on node with the advertised host address addr.
func onNode(node, addr string) func(*store.Container) {
	return func(c *store.Container) { c.Host, c.HostAddr = node, addr }
}

func published(port, hostPort int, hostIP string) store.Port {
	return store.Port{Port: port, Proto: "tcp", HostIP: hostIP, HostPort: hostPort}
}

func TestReach(t *testing.T) {
	all4 := published(80, 8080, "0.0.0.0")
	all6 := published(80, 8080, "::")
	tests := []struct {
		name      string
		c         store.Container
		opts      Options
		wantAddr  string
		wantNet   string
		wantReach string
		wantLive  bool
		problems  []wantProblem
	}{
		{
			name:     "single host: no node, container address",
			c:        ctr("web", vhost("a.test"), onNode("b", "10.0.0.2"), withPorts(all4)),
			opts:     Options{},
			wantAddr: "172.18.0.2:80", wantNet: "proxy", wantLive: true,
		},
		{
			name:     "same node: container address",
			c:        ctr("web", vhost("a.test"), onNode("a", "10.0.0.1"), withPorts(all4)),
			opts:     Options{Node: "a"},
			wantAddr: "172.18.0.2:80", wantNet: "proxy", wantLive: true,
		},
		{
			name:     "other node: host address and published port",
			c:        ctr("web", vhost("a.test"), onNode("b", "10.0.0.2"), withPorts(all4, all6)),
			opts:     Options{Node: "a"},
			wantAddr: "10.0.0.2:8080", wantReach: AddressHost, wantLive: true,
		},
		{
			name:     "other node, IPv6 host address",
			c:        ctr("web", vhost("a.test"), onNode("b", "2001:db8::2"), withPorts(all6)),
			opts:     Options{Node: "a"},
			wantAddr: "[2001:db8::2]:8080", wantReach: AddressHost, wantLive: true,
		},
		{
			name:     "other node, binding without host IP is all addresses",
			c:        ctr("web", vhost("a.test"), onNode("b", "10.0.0.2"), withPorts(published(80, 8080, ""))),
			opts:     Options{Node: "a"},
			wantAddr: "10.0.0.2:8080", wantReach: AddressHost, wantLive: true,
		},
		{
			name:     "other node, binding on one address uses it",
			c:        ctr("web", vhost("a.test"), onNode("b", "10.0.0.2"), withPorts(published(80, 9000, "10.0.1.2"))),
			opts:     Options{Node: "a"},
			wantAddr: "10.0.1.2:9000", wantReach: AddressHost, wantLive: true,
		},
		{
			name:     "all-address binding wins over one-address binding",
			c:        ctr("web", vhost("a.test"), onNode("b", "10.0.0.2"), withPorts(published(80, 9000, "10.0.1.2"), all4)),
			opts:     Options{Node: "a"},
			wantAddr: "10.0.0.2:8080", wantReach: AddressHost, wantLive: true,
		},
		{
			name: "portico.port picks the binding",
			c: ctr("web", labels(LabelVhost, "a.test", LabelPort, "3000"), onNode("b", "10.0.0.2"),
				withPorts(all4, published(3000, 3001, "0.0.0.0"))),
			opts:     Options{Node: "a"},
			wantAddr: "10.0.0.2:3001", wantReach: AddressHost, wantLive: true,
		},
		{
			name:     "udp binding does not count",
			c:        ctr("web", vhost("a.test"), onNode("b", "10.0.0.2"), withPorts(store.Port{Port: 80, Proto: "udp", HostIP: "0.0.0.0", HostPort: 8080})),
			opts:     Options{Node: "a"},
			problems: []wantProblem{{SeverityError, LabelAddress, `container port 80/tcp is not published on node "b"`}},
		},
		{
			name:     "other node, no published port: error naming it",
			c:        ctr("web", vhost("a.test"), onNode("b", "10.0.0.2"), withPorts(store.Port{Port: 80, Proto: "tcp"})),
			opts:     Options{Node: "a"},
			problems: []wantProblem{{SeverityError, LabelAddress, `not published on node "b" (docker run -p); a proxy on node "a" shares no network with it`}},
		},
		{
			name:      "other node, stopped: no bindings, no error, not live",
			c:         ctr("web", vhost("a.test"), onNode("b", "10.0.0.2"), withState("exited", ""), withNets(nil)),
			opts:      Options{Node: "a"},
			wantReach: AddressHost,
		},
		{
			name:     "other node without advertised address: container address (single-host records)",
			c:        ctr("web", vhost("a.test"), onNode("b", ""), withPorts(all4)),
			opts:     Options{Node: "a"},
			wantAddr: "172.18.0.2:80", wantNet: "proxy", wantLive: true,
		},
		{
			name:     "forced container on another node (overlay)",
			c:        ctr("web", labels(LabelVhost, "a.test", LabelAddress, "container"), onNode("b", "10.0.0.2"), withPorts(all4)),
			opts:     Options{Node: "a"},
			wantAddr: "172.18.0.2:80", wantNet: "proxy", wantLive: true,
		},
		{
			name:     "forced host on the same node: the proxy host's own address is fine",
			c:        ctr("web", labels(LabelVhost, "a.test", LabelAddress, "HOST"), onNode("a", "10.0.0.1"), withPorts(all4)),
			opts:     Options{Node: "a", LocalAddr: func(a netip.Addr) bool { return a == netip.MustParseAddr("10.0.0.1") }},
			wantAddr: "10.0.0.1:8080", wantReach: AddressHost, wantLive: true,
		},
		{
			name:     "another node may not point at the proxy host",
			c:        ctr("web", vhost("a.test"), onNode("b", "10.0.0.1"), withPorts(all4)),
			opts:     Options{Node: "a", LocalAddr: func(a netip.Addr) bool { return a == netip.MustParseAddr("10.0.0.1") }},
			problems: []wantProblem{{SeverityError, "", `host address (the reporter's --advertise-addr) "10.0.0.1" is not a usable unicast address: an address of the proxy host itself`}},
		},
		{
			name:     "forced host without advertised address",
			c:        ctr("web", labels(LabelVhost, "a.test", LabelAddress, "host"), withPorts(all4)),
			opts:     Options{},
			problems: []wantProblem{{SeverityError, LabelAddress, `published on all addresses of node "node1", whose reporter has no --advertise-addr; portico.address=host needs a published port`}},
		},
		{
			name:     "forced host, no published port",
			c:        ctr("web", labels(LabelVhost, "a.test", LabelAddress, "host"), onNode("a", "10.0.0.1")),
			opts:     Options{Node: "a"},
			problems: []wantProblem{{SeverityError, LabelAddress, `container port 80/tcp is not published on node "a" (docker run -p); portico.address=host needs a published port`}},
		},
		{
			name:     "loopback binding is refused",
			c:        ctr("web", vhost("a.test"), onNode("b", "10.0.0.2"), withPorts(published(80, 8080, "127.0.0.1"))),
			opts:     Options{Node: "a"},
			problems: []wantProblem{{SeverityError, "", `host port binding "127.0.0.1" is not a usable unicast address: loopback`}},
		},
		{
			name:     "hostile host address",
			c:        ctr("web", vhost("a.test"), onNode("b", "10.0.0.2\n"), withPorts(all4)),
			opts:     Options{Node: "a"},
			problems: []wantProblem{{SeverityError, "", `not an IP address`}},
		},
		{
			name:     "bad portico.address value",
			c:        ctr("web", labels(LabelVhost, "a.test", LabelAddress, "both")),
			opts:     Options{},
			problems: []wantProblem{{SeverityError, LabelAddress, "want one of"}},
		},
		{
			name:     "explicit auto",
			c:        ctr("web", labels(LabelVhost, "a.test", LabelAddress, "auto"), onNode("b", "10.0.0.2"), withPorts(all4)),
			opts:     Options{Node: "a"},
			wantAddr: "10.0.0.2:8080", wantReach: AddressHost, wantLive: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, probs := ParseService(tt.c, tt.opts)
			checkProblems(t, probs, tt.problems)
			if hasError(probs) {
				return
			}
			if svc.Addr != tt.wantAddr || svc.Network != tt.wantNet || svc.Reach != tt.wantReach || svc.Live != tt.wantLive {
				t.Errorf("got addr %q network %q reach %q live %v, want %q %q %q %v",
					svc.Addr, svc.Network, svc.Reach, svc.Live, tt.wantAddr, tt.wantNet, tt.wantReach, tt.wantLive)
			}
		})
	}
}

// TestReachGolden builds one multi-host set of records as seen by proxies
// on three nodes and compares the routes and problems with
// testdata/reach.golden (regenerate with -args -update).
func TestReachGolden(t *testing.T) {
	cs := []store.Container{
		ctr("web-a", vhost("web.test"), onNode("a", "10.0.0.1"), withPorts(published(80, 8081, "0.0.0.0"))),
		ctr("web-b", vhost("web.test"), onNode("b", "10.0.0.2"), withIP("172.18.0.9"), withPorts(published(80, 8082, "0.0.0.0"), published(80, 8082, "::"))),
		ctr("api-b", labels(LabelVhost, "api.test", LabelPort, "3000"), onNode("b", "10.0.0.2"), withIP("172.18.0.10"), withPorts(published(3000, 3000, "10.0.1.2"))),
		ctr("overlay-b", labels(LabelVhost, "overlay.test", LabelAddress, "container"), onNode("b", "10.0.0.2"), withIP("10.10.0.5")),
		ctr("hidden-b", vhost("hidden.test"), onNode("b", "10.0.0.2"), withIP("172.18.0.11"), withPorts(store.Port{Port: 80, Proto: "tcp"})),
		ctr("old-c", vhost("old.test"), onNode("c", ""), withIP("172.18.0.12")),
	}
	// The golden holds what this test is about, one line each: every
	// route's upstreams and every problem, per proxy node.
	var b []byte
	for _, node := range []string{"", "a", "b", "edge"} {
		res := Build(cs, Options{Node: node})
		b = fmt.Appendf(b, "proxy on node %q\n", node)
		for _, r := range res.Routes {
			b = fmt.Appendf(b, "  route %s -> %s\n", r.Host, strings.Join(r.Upstreams, " "))
		}
		for _, p := range res.Problems {
			b = fmt.Appendf(b, "  %s: %s\n", p.Severity, p.Error())
		}
	}
	const path = "testdata/reach.golden"
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -args -update to create it)", err)
	}
	if string(want) != string(b) {
		t.Errorf("%s differs; got:\n%s", path, b)
	}
}
