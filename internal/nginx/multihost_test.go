package nginx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/reporter"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
)

// TestOtherHostReachedThroughPublishedPort: a proxy on node "a" serves a
// container the real reporter of node "b" reports from the real Docker
// Engine. The container is on a network this test creates, which the
// proxy does not share (another node's network), and publishes its port
// on 127.0.0.1 (loopback only: no traffic leaves the machine). The proxy
// reaches it at the published port, not at its address on that network:
// the rendered upstream is 127.0.0.1:<host port>. A second container on
// node "b" that publishes nothing is an error naming it, and its vhost is
// not served; the first is unaffected.
func TestOtherHostReachedThroughPublishedPort(t *testing.T) {
	d := dockertest.New(t)
	netName := d.Network(t, "far")
	vhost := "far-" + d.RunID + ".test"
	id := d.Run(t, dockertest.RunOptions{Name: "far", Network: netName, Publish: map[string]string{"80/tcp": ""},
		Labels: map[string]string{routing.LabelVhost: vhost, routing.LabelPort: "80"}})
	hidden := d.Run(t, dockertest.RunOptions{Name: "hidden", Network: netName,
		Labels: map[string]string{routing.LabelVhost: "hidden-" + d.RunID + ".test", routing.LabelPort: "80"}})
	name := d.Name("far")
	containerIP := d.IP(t, id, netName)
	insp := d.Inspect(t, id)
	var hostPort int
	for _, b := range insp.NetworkSettings.Ports[network.MustParsePort("80/tcp")] {
		hostPort, _ = strconv.Atoi(b.HostPort)
	}
	if hostPort == 0 {
		t.Fatalf("port 80 not published: %+v", insp.NetworkSettings.Ports)
	}

	h := startStage(t, false, func(c *Config) {
		c.Dynamic = false // the rendered config names the upstream
		c.Routing.Node = "a"
	})
	rep, err := reporter.New(reporter.Config{Host: "b", Keys: h.keys, AdvertiseAddr: netip.MustParseAddr("127.0.0.1"),
		Labels: []string{d.LabelFilter()}, ResyncInterval: -1}, h.etcd.Client, slog.New(slog.NewTextHandler(t.Output(), nil)))
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

	h.want(vhost, 200, "name="+name)
	conf, err := os.ReadFile(h.stage.applier.ConfPath)
	if err != nil {
		t.Fatal(err)
	}
	up := fmt.Sprintf("127.0.0.1:%d", hostPort)
	if !strings.Contains(string(conf), up) || strings.Contains(string(conf), containerIP) {
		t.Errorf("config does not reach the container at %s only (its network address is %s):\n%s", up, containerIP, conf)
	}

	// The record carries the host address and the binding.
	resp, err := h.etcd.Client.Get(context.Background(), h.keys.Container("b", id))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("record: %v %v", resp, err)
	}
	rec, err := store.DecodeContainer(string(resp.Kvs[0].Key), resp.Kvs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if rec.HostAddr != "127.0.0.1" || !hasBinding(rec.Ports, 80, "127.0.0.1", hostPort) {
		t.Errorf("record host_addr %q ports %+v", rec.HostAddr, rec.Ports)
	}

	// The unpublished container: an error that names it, on the stage's
	// problems, and its vhost unknown.
	h.eventually("the unpublished container's problem", func() error {
		res := routing.Build(recordsOf(t, h.etcd.Client, h.keys), h.stage.cfg.Routing)
		for _, p := range res.Problems {
			if p.ContainerID == hidden && p.Severity == routing.SeverityError && strings.Contains(p.Error(), d.Name("hidden")) &&
				strings.Contains(p.Message, `not published on node "b"`) {
				return nil
			}
		}
		return fmt.Errorf("problems %v", res.Problems)
	})
	if code, body, err := h.get("hidden-" + d.RunID + ".test"); err != nil || strings.Contains(body, "name=") {
		t.Errorf("unpublished container served: %d %q %v", code, body, err)
	}
	h.want(vhost, 200, "name="+name)
}

func hasBinding(ps []store.Port, port int, ip string, hostPort int) bool {
	for _, p := range ps {
		if p.Port == port && p.HostIP == ip && p.HostPort == hostPort {
			return true
		}
	}
	return false
}

func recordsOf(t *testing.T, cli *clientv3.Client, keys store.Keys) []store.Container {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, keys.Containers(), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Container
	for _, kv := range resp.Kvs {
		c, err := store.DecodeContainer(string(kv.Key), kv.Value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}
