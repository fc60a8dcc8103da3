package main

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestAllowedDomainsFlag(t *testing.T) {
	var out bytes.Buffer
	c := newCommand("nginx", "test", &out)
	no := addNginx(c.fs)
	if err := c.parse(nil, envOf(map[string]string{"PORTICO_ALLOWED_DOMAINS": "node1=*.one.test,shared.test"})); err != nil {
		t.Fatal(err)
	}
	opts, err := routingOptions(*no.network, no.allowed)
	if err != nil {
		t.Fatal(err)
	}
	if !opts.Allowed.Enabled() || !opts.Allowed.Allows("node1", "a.one.test") || opts.Allowed.Allows("node2", "a.one.test") ||
		!opts.Allowed.Allows("node2", "shared.test") {
		t.Errorf("allow-list from PORTICO_ALLOWED_DOMAINS not applied: %+v", opts.Allowed)
	}
	if _, err := routingOptions("", &listFlag{vals: []string{"ok.test", "node1=a_b.test"}}); err == nil ||
		!strings.Contains(err.Error(), "--allowed-domains") || !strings.Contains(err.Error(), "a_b.test") {
		t.Errorf("bad entry: %v", err)
	}
	if opts, err := routingOptions("proxy", nil); err != nil || opts.Allowed.Enabled() || opts.Network != "proxy" {
		t.Errorf("no flag: %+v, %v", opts, err)
	}
}

func TestHostAddrs(t *testing.T) {
	now := time.Unix(0, 0)
	calls := 0
	addrs := []net.Addr{&net.IPNet{IP: net.ParseIP("172.17.0.1"), Mask: net.CIDRMask(16, 32)}, &net.IPNet{IP: net.ParseIP("fe80::1"), Mask: net.CIDRMask(64, 128)}}
	h := newHostAddrs(func() ([]net.Addr, error) { calls++; return addrs, nil }, func() time.Time { return now })
	if !h.has(netip.MustParseAddr("172.17.0.1")) || !h.has(netip.MustParseAddr("::ffff:172.17.0.1")) || h.has(netip.MustParseAddr("172.17.0.2")) {
		t.Error("gateway address not recognised, or another one is")
	}
	addrs = append(addrs, &net.IPNet{IP: net.ParseIP("172.18.0.1"), Mask: net.CIDRMask(16, 32)})
	if h.has(netip.MustParseAddr("172.18.0.1")) || calls != 1 {
		t.Errorf("re-read before the TTL: %d calls", calls)
	}
	now = now.Add(hostAddrsTTL)
	if !h.has(netip.MustParseAddr("172.18.0.1")) || calls != 2 {
		t.Errorf("new bridge not seen after the TTL: %d calls", calls)
	}
	// The real interfaces: loopback is among them.
	real := newHostAddrs(net.InterfaceAddrs, time.Now)
	if !real.has(netip.MustParseAddr("127.0.0.1")) {
		t.Error("127.0.0.1 not among this host's addresses")
	}
}
