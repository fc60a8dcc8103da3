package nginx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/portico/portico/internal/nginx/supervise"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
)

// restart stops h's stage and runs a new one on the same dir with cli
// (h's etcd when nil), as a restarted `portico nginx` would. It does not
// wait for anything: the caller checks what is served.
func (h *harness) restart(cli Client, mutate func(*Config), whileDown func()) (*Stage, *testWriter, *prometheus.Registry, chan error) {
	h.t.Helper()
	h.cancelRun()
	h.eventually("old nginx gone", func() error {
		if p := h.stage.sup.Pid(); p != 0 {
			return fmt.Errorf("pid %d", p)
		}
		return nil
	})
	if whileDown != nil {
		whileDown()
	}
	if cli == nil {
		cli = h.etcd.Client
	}
	reg := prometheus.NewRegistry()
	cfg := Config{Keys: h.keys, Dir: h.dir, HTTPAddrs: []string{h.http}, NginxBinary: nginxBin, Instance: "test",
		Debounce: 20 * time.Millisecond, Metrics: reg,
		Routing: routing.Options{LoopbackUpstreams: true}} // the upstreams are test servers on 127.0.0.1
	cfg.Dynamic = h.stage.cfg.Dynamic
	if mutate != nil {
		mutate(&cfg)
	}
	w := &testWriter{t: h.t}
	h.t.Cleanup(w.close)
	st, err := New(cfg, cli, slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancelRun = cancel
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			h.t.Error("restarted Run did not return")
		}
	})
	h.stage, h.log = st, w
	return st, w, reg, done
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var m *dto.Metric = mf.GetMetric()[0]
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// With the store down at start, nginx serves the last good config at once
// and the stage says the store does not answer (log and metric).
func TestStageStartsFromLastGoodConfigWithoutStore(t *testing.T) {
	h := startStage(t, false, nil)
	a := echoServer(t, "A")
	h.putContainer("a1", a, map[string]string{routing.LabelVhost: "app.test"})
	h.want("app.test", 200, "A host=app.test")

	dead, err := store.Connect(store.Config{Endpoints: []string{"http://" + freeAddr(t)}, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	_, _, reg, done := h.restart(dead, nil, nil)
	h.want("app.test", 200, "A host=app.test")
	h.want("unknown.test", 404, "")
	h.logHas("starting nginx from the last good config")
	h.logHas("the store does not answer", "nginx_running=true")
	if v := gauge(t, reg, "portico_nginx_store_synced"); v != 0 {
		t.Errorf("portico_nginx_store_synced = %v while the store is down", v)
	}
	h.want("app.test", 200, "A host=app.test")
	select {
	case err := <-done:
		t.Fatalf("Run returned while the store is down: %v", err)
	default:
	}
}

// A restart whose first render nginx refuses (one vhost's include broke
// while the stage was down) keeps serving the other sites from a config
// without the broken vhost. Before, the failed first render was replaced by
// an empty config: 404 for every site.
func TestStageRestartWithOneBadInputKeepsSites(t *testing.T) {
	inc := t.TempDir()
	h := startStage(t, false, func(c *Config) { c.IncludeDir, c.Dynamic = inc, false })
	a := echoServer(t, "A")
	h.putContainer("one", a, map[string]string{routing.LabelVhost: "one.test"})
	h.putContainer("two", a, map[string]string{routing.LabelVhost: "two.test"})
	h.want("one.test", 200, "A host=one.test")
	h.want("two.test", 200, "A host=two.test")
	good, err := os.ReadFile(h.stage.applier.ConfPath)
	if err != nil {
		t.Fatal(err)
	}

	// two.test's include breaks while the stage is down.
	h.restart(nil, func(c *Config) { c.IncludeDir = inc }, func() {
		if err := os.MkdirAll(filepath.Join(inc, "two.test"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(inc, "two.test", "x.conf"), []byte("location / { return 200; }\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	h.want("one.test", 200, "A host=one.test")
	h.want("two.test", 404, "")
	h.eventually("status names two.test", func() error {
		if st := h.status(); strings.Join(st.ErrorRoutes, ",") != "two.test" || st.Routes != 1 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	now, _ := os.ReadFile(h.stage.applier.ConfPath)
	if !strings.Contains(string(now), "one.test") || len(now) < len(good)/2 {
		t.Errorf("config on disk lost the good sites:\n%s", now)
	}
}

// A listen address another process holds is a fatal error naming it, not
// an endless restart loop.
func TestStageListenAddressInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().String()
	etcd := storetest.Start(t).Client
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	st, err := New(Config{Keys: store.NewKeys("/t"), Dir: t.TempDir(), HTTPAddrs: []string{freeAddr(t), taken}, NginxBinary: nginxBin,
		Instance: "test"}, etcd, slog.New(slog.NewTextHandler(w, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err = st.Run(ctx)
	var le *supervise.ListenError
	if !errors.As(err, &le) || le.Addr != taken || !strings.Contains(err.Error(), taken+": address already in use") {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("Run returned after %s: %v", time.Since(start).Round(time.Millisecond), err)
}

// A config on disk rendered with other settings (here another listen
// address) is not served before the store answers: nginx would listen
// where the operator no longer wants it.
func TestStageDoesNotStartFromConfigOfOtherSettings(t *testing.T) {
	h := startStage(t, false, nil)
	a := echoServer(t, "A")
	h.putContainer("a1", a, map[string]string{routing.LabelVhost: "app.test"})
	h.want("app.test", 200, "A host=app.test")
	old := h.http

	dead, err := store.Connect(store.Config{Endpoints: []string{"http://" + freeAddr(t)}, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	moved := freeAddr(t)
	h.restart(dead, func(c *Config) { c.HTTPAddrs = []string{moved} }, nil)
	h.logHas("not starting from the config on disk", "rendered with other settings")
	h.logHas("the store does not answer", "nginx_running=false")
	if _, _, err := h.get("app.test"); err == nil {
		t.Errorf("nginx still serves the old address %s", old)
	}
}
