package routing

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/portico/portico/internal/store"
)

func TestUpstreamAddr(t *testing.T) {
	tests := []struct {
		fam, s string
		why    string // "" accepted
	}{
		{"IPv4", "172.18.0.2", ""},
		{"IPv4", "10.0.0.1", ""},
		{"IPv4", "192.168.1.1", ""},
		{"IPv4", "8.8.8.8", ""},
		{"IPv6", "fd00::2", ""},
		{"IPv6", "2001:db8::1", ""},
		{"IPv6", "::ffff:172.18.0.2", ""},
		{"IPv4", "127.0.0.1", "loopback"},
		{"IPv4", "127.255.255.254", "loopback"},
		{"IPv6", "::1", "loopback"},
		{"IPv6", "::ffff:127.0.0.1", "loopback"},
		{"IPv4", "169.254.169.254", "link-local"},
		{"IPv4", "169.254.0.1", "link-local"},
		{"IPv6", "fe80::1", "link-local"},
		{"IPv6", "febf::1", "link-local"},
		{"IPv6", "::ffff:169.254.169.254", "link-local"},
		{"IPv4", "0.0.0.0", "unspecified"},
		{"IPv4", "0.1.2.3", "unspecified"},
		{"IPv6", "::", "unspecified"},
		{"IPv6", "::ffff:0.0.0.0", "unspecified"},
		{"IPv4", "224.0.0.1", "multicast"},
		{"IPv4", "239.255.255.250", "multicast"},
		{"IPv6", "ff02::1", "multicast"},
		{"IPv6", "ff05::2", "multicast"},
		{"IPv6", "::ffff:224.0.0.251", "multicast"},
		{"IPv4", "255.255.255.255", "broadcast"},
		{"IPv4", "fd00::2", "not an IPv4 address"},
		{"IPv6", "172.18.0.2", "not an IPv6 address"},
		{"IPv6", "fe80::1%eth0", "zone"},
		{"IPv4", "172.18.0.2;", "not an IP address"},
		{"IPv4", "localhost", "not an IP address"},
		{"IPv4", "", "not an IP address"},
	}
	for _, tt := range tests {
		a, why := upstreamAddr(tt.fam, tt.s, Options{})
		if tt.why == "" {
			if why != "" || !a.IsValid() {
				t.Errorf("%s %q rejected: %s", tt.fam, tt.s, why)
			}
			continue
		}
		if !strings.Contains(why, tt.why) || a.IsValid() {
			t.Errorf("%s %q: %q, %v; want rejected as %q", tt.fam, tt.s, why, a, tt.why)
		}
	}
}

func TestUpstreamAddrLocal(t *testing.T) {
	local := func(a netip.Addr) bool {
		return a == netip.MustParseAddr("172.17.0.1") || a == netip.MustParseAddr("fd00::1")
	}
	for _, tt := range []struct {
		fam, s string
		ok     bool
	}{{"IPv4", "172.17.0.1", false}, {"IPv6", "::ffff:172.17.0.1", false}, {"IPv6", "fd00::1", false},
		{"IPv4", "172.17.0.2", true}, {"IPv6", "fd00::2", true}} {
		_, why := upstreamAddr(tt.fam, tt.s, Options{LocalAddr: local})
		if (why == "") != tt.ok || !tt.ok && !strings.Contains(why, "proxy host") {
			t.Errorf("%s %q: %q, want ok=%v", tt.fam, tt.s, why, tt.ok)
		}
	}
	for _, s := range []string{"127.0.0.1", "::1", "::ffff:127.0.0.2"} {
		fam := "IPv6"
		if !strings.Contains(s, ":") {
			fam = "IPv4"
		}
		if _, why := upstreamAddr(fam, s, Options{LoopbackUpstreams: true, LocalAddr: func(netip.Addr) bool { return true }}); why != "" {
			t.Errorf("LoopbackUpstreams: %s rejected: %s", s, why)
		}
	}
	c := ctr("evil", vhost("evil.test"), withIP("172.17.0.1"))
	res := Build([]store.Container{c, bystander()}, Options{Network: "proxy", LocalAddr: local})
	if len(res.Routes) != 1 || len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Message, `"172.17.0.1"`) {
		t.Errorf("gateway address: routes %+v, problems %v", res.Routes, res.Problems)
	}
}

// TestProxyHostAddressesRejected: a record pointing a site at the proxy host
// (or at no single host) is rejected with an error naming the container,
// network and address; the others keep their routes.
func TestProxyHostAddressesRejected(t *testing.T) {
	for _, n := range []store.Network{{IPv4: "127.0.0.1"}, {IPv6: "::1"}, {IPv6: "::ffff:127.0.0.1"}, {IPv4: "169.254.169.254"},
		{IPv6: "fe80::1"}, {IPv4: "224.0.0.1"}, {IPv6: "ff02::1"}, {IPv4: "0.0.0.0"}, {IPv4: "172.18.0.5", IPv6: "::1"}} {
		c := ctr("evil", vhost("evil.test"), withNets(map[string]store.Network{"proxy": n}))
		res := Build([]store.Container{c, bystander()}, Options{Network: "proxy"})
		bad := n.IPv6
		if bad == "" || n.IPv4 == "127.0.0.1" {
			bad = n.IPv4
		}
		if len(res.Routes) != 1 || res.Routes[0].Host != "bystander.test" {
			t.Errorf("%+v: routes %+v", n, res.Routes)
		}
		if len(res.Problems) != 1 {
			t.Fatalf("%+v: problems %v", n, res.Problems)
		}
		p := res.Problems[0]
		if p.Severity != SeverityError || p.Container != "evil" || !strings.Contains(p.Message, `network "proxy"`) || !strings.Contains(p.Message, `"`+bad+`"`) {
			t.Errorf("%+v: problem does not name container, network and address: %v", n, p.Error())
		}
	}
}
