package dockertest

import (
	"crypto/rand"
	"net/netip"
	"testing"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// NetworkIPv6 creates a bridge network named name-<run id> with IPv6 on a
// random ULA /64 (fdXX:XXXX:XXXX:XXXX::/64, so parallel runs do not
// overlap), labelled with the run label, and returns its name, its subnet
// and whether it is IPv6-only. It asks for no IPv4 (EnableIPv4=false,
// `docker network create --ipv4=false`); daemons before Docker 28 ignore
// that and give the network an IPv4 subnet too, which ipv6Only reports.
func (e *Env) NetworkIPv6(t testing.TB, name string) (full string, subnet netip.Prefix, ipv6Only bool) {
	t.Helper()
	full = e.Name(name)
	var a [16]byte
	a[0] = 0xfd
	rand.Read(a[1:8])
	subnet = netip.PrefixFrom(netip.AddrFrom16(a), 64)
	yes, no := true, false
	c, cancel := ctx()
	defer cancel()
	if _, err := e.Client.NetworkCreate(c, full, client.NetworkCreateOptions{
		Driver: "bridge", Labels: e.Labels(nil), EnableIPv6: &yes, EnableIPv4: &no,
		IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet}}},
	}); err != nil {
		t.Fatalf("create IPv6 network %s (%s): %v", full, subnet, err)
	}
	res, err := e.Client.NetworkInspect(c, full, client.NetworkInspectOptions{})
	if err != nil {
		t.Fatalf("inspect network %s: %v", full, err)
	}
	if !res.Network.EnableIPv6 {
		t.Fatalf("network %s: the daemon did not enable IPv6", full)
	}
	ipv6Only = true
	for _, cfg := range res.Network.IPAM.Config {
		if cfg.Subnet.Addr().Is4() {
			ipv6Only = false
		}
	}
	return full, subnet, ipv6Only
}

// IPv6 returns the container's global IPv6 address on network; it fails
// the test if the container has none there.
func (e *Env) IPv6(t testing.TB, id, network string) string {
	t.Helper()
	in := e.Inspect(t, id)
	if in.NetworkSettings != nil {
		if ep := in.NetworkSettings.Networks[network]; ep != nil && ep.GlobalIPv6Address.IsValid() {
			return ep.GlobalIPv6Address.String()
		}
	}
	t.Fatalf("container %s has no IPv6 address on network %s", id, network)
	return ""
}
