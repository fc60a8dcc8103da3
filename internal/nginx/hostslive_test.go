package nginx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/hosts"
	"github.com/portico/portico/internal/reporter"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
)

// TestStaleHostServedUntilExpiry: the real reporter of node "b" follows the
// real Docker Engine through a socket this test can cut, and keeps its
// heartbeat in the stage's real embedded etcd (TTL 2 s). A proxy on node
// "a" (real nginx) serves its container through the published port.
//
//   - Docker goes away: the reporter keeps its records; a TTL later the
//     host is stale, in the stage's metrics, and its route is still served.
//   - At the host expiry (15 s after the host was last seen) the route
//     goes, with no change in etcd (the stage's own timer); the records
//     stay in etcd: nothing deletes another host's records.
//   - Docker comes back: the host is live, the route is served again, the
//     reporter removes its own record of a container that is gone and
//     leaves node "c"'s record alone.
func TestStaleHostServedUntilExpiry(t *testing.T) {
	d := dockertest.New(t)
	fw := dockertest.NewForwarder(t)
	netName := d.Network(t, "gone")
	vhost := "gone-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "gone", Network: netName, Publish: map[string]string{"80/tcp": ""},
		Labels: map[string]string{routing.LabelVhost: vhost, routing.LabelPort: "80"}})
	name := d.Name("gone")

	const expiry = 15 * time.Second
	reg := prometheus.NewRegistry()
	h := startStage(t, false, func(c *Config) {
		c.Routing.Node = "a"
		c.HostExpiry = expiry
		c.Metrics = reg
	})
	rep, err := reporter.New(reporter.Config{Host: "b", Keys: h.keys, DockerHost: fw.Host(), AdvertiseAddr: netip.MustParseAddr("127.0.0.1"),
		Labels: []string{d.LabelFilter()}, ResyncInterval: -1, Liveness: h.etcd.Client, HeartbeatTTL: 2 * time.Second},
		h.etcd.Client, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rep.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("reporter: %v", err)
		}
	})
	// Node "c" has a record and no liveness keys: never judged.
	other := store.Container{ID: "other", Name: "other", Host: "c", State: "exited", Labels: map[string]string{routing.LabelVhost: "other.test"}}
	if _, err := store.PutJSON(context.Background(), h.etcd.Client, h.keys.Container("c", "other"), other); err != nil {
		t.Fatal(err)
	}

	h.want(vhost, 200, "name="+name)
	h.eventually("host b live", hostIs(h, "b", hosts.Live, expiry))
	records := countRecords(t, h.etcd.Client, h.keys.HostContainers("b"))

	fw.Cut()
	cut := time.Now()
	h.eventually("host b stale", func() error {
		if err := hostIs(h, "b", hosts.Stale, expiry)(); err != nil {
			return err
		}
		return stateGauge(reg, "portico_nginx_hosts", "stale", 1)
	})
	t.Logf("stale %s after Docker went away", time.Since(cut).Round(time.Millisecond))
	if err := stateGauge(reg, "portico_nginx_host_containers", "stale", float64(records)); err != nil {
		t.Error(err)
	}
	h.want(vhost, 200, "name="+name) // stale: still served

	h.eventually("the route gone at the expiry", func() error {
		code, body, err := h.get(vhost)
		if err != nil || strings.Contains(body, "name=") {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		return nil
	})
	t.Logf("route gone %s after Docker went away (expiry %s from the last-seen time)", time.Since(cut).Round(time.Millisecond), expiry)
	if err := stateGauge(reg, "portico_nginx_hosts", "expired", 1); err != nil {
		t.Error(err)
	}
	if n := countRecords(t, h.etcd.Client, h.keys.HostContainers("b")); n != records {
		t.Errorf("host b's records: %d, want the %d it had: nothing deletes them", n, records)
	}

	// A record of a container that no longer exists, written while the
	// reporter was away: the reporter removes it when it comes back.
	ghost := store.Container{ID: "ghost", Name: "ghost", Host: "b", State: "running"}
	if _, err := store.PutJSON(context.Background(), h.etcd.Client, h.keys.Container("b", "ghost"), ghost); err != nil {
		t.Fatal(err)
	}
	fw.Restore(t)
	h.eventually("host b live again", hostIs(h, "b", hosts.Live, expiry))
	h.want(vhost, 200, "name="+name)
	h.eventually("the ghost record reconciled away", func() error {
		if n := countRecords(t, h.etcd.Client, h.keys.Container("b", "ghost")); n != 0 {
			return errors.New("still there")
		}
		return nil
	})
	if n := countRecords(t, h.etcd.Client, h.keys.Container("c", "other")); n != 1 {
		t.Errorf("node c's record touched: %d left", n)
	}
}

func hostIs(h *harness, host string, want hosts.State, expiry time.Duration) func() error {
	return func() error {
		resp, err := h.etcd.Client.Get(context.Background(), h.keys.Hosts(), clientv3.WithPrefix())
		if err != nil {
			return err
		}
		entries := map[string]store.Entry{}
		for _, kv := range resp.Kvs {
			entries[string(kv.Key)] = store.Entry{Value: kv.Value}
		}
		if got := hosts.Judge(entries, h.keys, time.Now(), expiry).State(host); got != want {
			return fmt.Errorf("host %s is %s", host, got)
		}
		return nil
	}
}

func countRecords(t *testing.T, cli *clientv3.Client, prefix string) int {
	t.Helper()
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return int(resp.Count)
}

// stateGauge checks one gauge of reg labelled state.
func stateGauge(reg *prometheus.Registry, name, state string, want float64) error {
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "state" && l.GetValue() == state {
					if got := m.GetGauge().GetValue(); got != want {
						return fmt.Errorf("%s{state=%q} = %v, want %v", name, state, got, want)
					}
					return nil
				}
			}
		}
	}
	return fmt.Errorf("%s{state=%q} not exported", name, state)
}
