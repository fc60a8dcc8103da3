package nginx

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
)

// TestIPv6UpstreamsServed: a container reachable only over IPv6 is served
// on both paths, through a real nginx, from a real container on an
// IPv6-enabled Docker network this test creates (a random ULA /64; without
// IPv4 where the daemon supports --ipv4=false, Docker >= 28). Its record
// carries only the IPv6 address, as the reporter writes it for an
// IPv6-only network, so nginx must connect over IPv6: the backend sees an
// IPv6 peer. Before the fix the dynamic path answered 500 (the balancer
// gave nginx "fd..::2" without brackets, which it read as host "fd.." and
// an invalid port).
func TestIPv6UpstreamsServed(t *testing.T) {
	d := dockertest.New(t)
	netName, subnet, only := d.NetworkIPv6(t, "v6")
	t.Logf("network %s: %s, IPv6-only=%v", netName, subnet, only)
	id := d.Run(t, dockertest.RunOptions{Name: "v6", Network: netName})
	ip6 := d.IPv6(t, id, netName)
	if a := netip.MustParseAddr(ip6); !subnet.Contains(a) {
		t.Fatalf("container address %s is not in the network's %s", a, subnet)
	}
	name := d.Name("v6")

	for _, dynamic := range []bool{true, false} {
		t.Run(map[bool]string{true: "dynamic", false: "static"}[dynamic], func(t *testing.T) {
			h := startStage(t, false, func(c *Config) { c.Dynamic = dynamic })
			c := store.Container{ID: "v6", Name: name, Host: "node1", State: "running",
				Labels:   map[string]string{routing.LabelVhost: "v6.test", routing.LabelPort: "80"},
				Networks: map[string]store.Network{netName: {IPv6: ip6}}}
			if _, err := store.PutJSON(context.Background(), h.etcd.Client, h.keys.Container("node1", "v6"), c); err != nil {
				t.Fatal(err)
			}
			h.want("v6.test", 200, "name="+name)
			// The backend's view: its peer is nginx over IPv6 (the
			// network's gateway), and the Host is the site's.
			h.eventually("/headers over IPv6", func() error {
				req, _ := http.NewRequest("GET", "http://"+h.http+"/headers", nil)
				req.Host = "v6.test"
				resp, err := noRedirect.Do(req)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				first, _, _ := strings.Cut(string(b), "\n")
				remote, ok := strings.CutPrefix(first, "remote=")
				ap, err := netip.ParseAddrPort(remote)
				if resp.StatusCode != 200 || !ok || err != nil || !ap.Addr().Is6() || !subnet.Contains(ap.Addr()) {
					return fmt.Errorf("%d %q: want the backend to see a peer in %s", resp.StatusCode, b, subnet)
				}
				return nil
			})
		})
	}
}
