package reporter_test

// Integration tests: the real Docker daemon, a real embedded etcd.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/reporter"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
	"github.com/portico/portico/internal/testenv/dockertest"
)

// wait bounds how long a change may take to reach etcd; catchUp bounds
// catching up after an outage, when a retry may be up to 5s away. They are
// deadlines, not expectations (a change takes ~30ms): under CI the e2e
// tests start hundreds of containers beside these tests, loading the
// daemon.
const (
	wait    = 15 * time.Second
	catchUp = 30 * time.Second
)

var keys = store.NewKeys("/portico")

type harness struct {
	env  *dockertest.Env
	etcd *storetest.Etcd
	host string
}

func newHarness(t *testing.T) *harness {
	env := dockertest.New(t)
	return &harness{env: env, etcd: storetest.Start(t), host: "host-" + env.RunID}
}

type running struct {
	r    *reporter.Reporter
	reg  *prometheus.Registry
	stop func()
}

// start runs a reporter until the returned stop (or the test's end).
// Without cfg.Labels it reports only this test's containers (the run
// label): the Docker daemon is shared, and its other containers, the decoy
// among them, are none of the test's business.
func (h *harness) start(t *testing.T, cfg reporter.Config) *running {
	t.Helper()
	if len(cfg.Labels) == 0 {
		cfg.Labels = []string{h.env.LabelFilter()}
	}
	reg := prometheus.NewRegistry()
	cfg.Host, cfg.Keys, cfg.Metrics = h.host, keys, reg
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := reporter.New(cfg, h.etcd.Client, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		})
	}
	t.Cleanup(stop)
	return &running{r: r, reg: reg, stop: stop}
}

func (rr *running) waitSynced(t *testing.T) {
	t.Helper()
	select {
	case <-rr.r.Synced():
	case <-time.After(15 * time.Second):
		t.Fatal("reporter did not sync within 15s")
	}
}

// metric returns a counter's or gauge's value.
func (rr *running) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := rr.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// record reads a container record; ok is false if there is none.
func (h *harness) record(t *testing.T, id string) (store.Container, bool) {
	t.Helper()
	key := keys.Container(h.host, id)
	resp, err := h.etcd.Client.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return store.Container{}, false
	}
	c, err := store.DecodeContainer(key, resp.Kvs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	return c, true
}

// waitRecord polls until the record of id satisfies check, and returns it
// and how long that took.
func (h *harness) waitRecord(t *testing.T, id, what string, check func(c store.Container) error) (store.Container, time.Duration) {
	t.Helper()
	return h.waitRecordWithin(t, wait, id, what, check)
}

func (h *harness) waitRecordWithin(t *testing.T, within time.Duration, id, what string, check func(c store.Container) error) (store.Container, time.Duration) {
	t.Helper()
	start := time.Now()
	var c store.Container
	dockertest.Poll(t, within, what, func() error {
		var ok bool
		if c, ok = h.record(t, id); !ok {
			return fmt.Errorf("no record of %s", id)
		}
		return check(c)
	})
	return c, time.Since(start)
}

func (h *harness) waitGone(t *testing.T, within time.Duration, id string) {
	t.Helper()
	dockertest.Poll(t, within, "record of "+id+" deleted", func() error {
		if c, ok := h.record(t, id); ok {
			return fmt.Errorf("record still there: %+v", c)
		}
		return nil
	})
}

func state(want string) func(store.Container) error {
	return func(c store.Container) error {
		if c.State != want {
			return fmt.Errorf("state %q, want %q", c.State, want)
		}
		return nil
	}
}

func (h *harness) revision(t *testing.T) int64 {
	t.Helper()
	resp, err := h.etcd.Client.Get(context.Background(), "/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// TestLifecycle follows one container through every change the reporter
// reports.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	image := h.env.Image(t)
	front := h.env.Network(t, "front")
	back := h.env.Network(t, "back")
	rr := h.start(t, reporter.Config{})
	rr.waitSynced(t)

	id := h.env.Run(t, dockertest.RunOptions{
		Name:    "web",
		Network: front,
		Labels:  map[string]string{"portico.vhost": "web.test", "portico.port": "80"},
		Env:     []string{"VIRTUAL_HOST=web.test", "SECRET=x", "LETSENCRYPT_HOST=web.test"},
	})
	ip := h.env.IP(t, id, front)
	c, took := h.waitRecord(t, id, "record of running container", state("running"))
	t.Logf("docker start returned -> record running: %v", took)
	want := store.Container{
		ID: id, Name: h.env.Name("web"), Host: h.host, Image: image,
		// The run label is the filter's key: copied.
		Labels:   map[string]string{"portico.vhost": "web.test", "portico.port": "80", dockertest.RunLabel: h.env.RunID},
		Env:      map[string]string{"VIRTUAL_HOST": "web.test", "LETSENCRYPT_HOST": "web.test"},
		Networks: map[string]store.Network{front: {IPv4: ip}},
		Ports:    []store.Port{{Port: 80, Proto: "tcp"}},
		State:    "running",
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("record\n got  %+v\n want %+v", c, want)
	}

	h.env.Stop(t, id)
	_, took = h.waitRecord(t, id, "stopped", state("exited"))
	t.Logf("docker stop returned -> record exited: %v", took)

	h.env.Start(t, id)
	h.waitRecord(t, id, "started again", state("running"))

	h.env.Pause(t, id)
	h.waitRecord(t, id, "paused", state("paused"))
	h.env.Unpause(t, id)
	h.waitRecord(t, id, "unpaused", state("running"))

	name := h.env.Rename(t, id, "web-renamed")
	h.waitRecord(t, id, "renamed", func(c store.Container) error {
		if c.Name != name {
			return fmt.Errorf("name %q, want %q", c.Name, name)
		}
		return nil
	})

	h.env.Connect(t, id, back)
	backIP := h.env.IP(t, id, back)
	h.waitRecord(t, id, "connected to "+back, func(c store.Container) error {
		if c.Networks[back].IPv4 != backIP || c.Networks[front].IPv4 == "" {
			return fmt.Errorf("networks %+v, want %s on %s and an address on %s", c.Networks, backIP, back, front)
		}
		return nil
	})
	h.env.Disconnect(t, id, back)
	h.waitRecord(t, id, "disconnected from "+back, func(c store.Container) error {
		if got := slices.Sorted(maps.Keys(c.Networks)); !reflect.DeepEqual(got, []string{front}) {
			return fmt.Errorf("networks %v, want just %s", got, front)
		}
		return nil
	})

	h.env.Remove(t, id)
	h.waitGone(t, wait, id)

	if n := rr.metric(t, "portico_reporter_docker_up"); n != 1 {
		t.Errorf("docker_up = %v", n)
	}
	if n := rr.metric(t, "portico_reporter_events_total"); n < 8 {
		t.Errorf("events_total = %v, want at least one per change", n)
	}
}

// TestHealth reports a health check's status as it changes.
func TestHealth(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	net := h.env.Network(t, "health")
	h.start(t, reporter.Config{Labels: []string{dockertest.RunLabel + "=" + h.env.RunID}})
	id := h.env.Run(t, dockertest.RunOptions{
		Name:    "checked",
		Network: net,
		Healthcheck: &container.HealthConfig{
			Test:     []string{"CMD", "/backend", "healthcheck"},
			Interval: 200 * time.Millisecond, Timeout: 2 * time.Second, Retries: 1,
		},
	})
	health := func(want string) func(store.Container) error {
		return func(c store.Container) error {
			if c.Health != want {
				return fmt.Errorf("health %q, want %q", c.Health, want)
			}
			return nil
		}
	}
	// Docker runs the check by exec; on a loaded box that can take a while.
	h.waitRecordWithin(t, 30*time.Second, id, "healthy", health("healthy"))

	url := "http://" + h.env.IP(t, id, net) + "/healthz?set=fail"
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c, _ := h.waitRecordWithin(t, 30*time.Second, id, "unhealthy", health("unhealthy"))
	if c.Live() {
		t.Errorf("unhealthy container is Live: %+v", c)
	}
}

// TestRestart: a new reporter keeps other hosts' records, drops its own
// stale ones, and writes nothing when nothing changed.
func TestRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	other := store.Container{ID: "0ther", Name: "elsewhere", Host: "other-" + h.env.RunID, State: "running"}
	stale := store.Container{ID: "5tale", Name: "gone", Host: h.host, State: "running"}
	for _, c := range []store.Container{other, stale} {
		if _, err := store.PutJSON(ctx, h.etcd.Client, keys.Container(c.Host, c.ID), c); err != nil {
			t.Fatal(err)
		}
	}
	id := h.env.Run(t, dockertest.RunOptions{Name: "kept", Labels: map[string]string{"portico.vhost": "kept.test"}})
	cfg := reporter.Config{Labels: []string{dockertest.RunLabel + "=" + h.env.RunID}}

	first := h.start(t, cfg)
	first.waitSynced(t)
	if _, ok := h.record(t, id); !ok {
		t.Fatalf("no record of %s after the first sync", id)
	}
	if c, ok := h.record(t, stale.ID); ok {
		t.Errorf("stale record survived the first sync: %+v", c)
	}
	resp, err := h.etcd.Client.Get(ctx, keys.Container(other.Host, other.ID))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("other host's record: %v, %v", resp, err)
	}
	if n := first.metric(t, "portico_reporter_writes_total"); n != 2 {
		t.Errorf("first sync wrote %v times, want 2 (one put, one delete)", n)
	}
	first.stop()

	rev := h.revision(t)
	second := h.start(t, cfg)
	second.waitSynced(t)
	if got := h.revision(t); got != rev {
		t.Errorf("etcd revision moved from %d to %d on a resync with nothing changed", rev, got)
	}
	if n := second.metric(t, "portico_reporter_writes_total"); n != 0 {
		t.Errorf("writes_total = %v after an idle resync", n)
	}
	if n := second.metric(t, "portico_reporter_resyncs_total"); n != 1 {
		t.Errorf("resyncs_total = %v", n)
	}
}

// TestDockerGone cuts the reporter off Docker, changes containers behind
// its back, and checks that it catches up once Docker is back.
func TestDockerGone(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	fw := dockertest.NewForwarder(t)

	kept := h.env.Run(t, dockertest.RunOptions{Name: "kept"})
	doomed := h.env.Run(t, dockertest.RunOptions{Name: "doomed"})
	rr := h.start(t, reporter.Config{DockerHost: fw.Host(), Labels: []string{dockertest.RunLabel + "=" + h.env.RunID}})
	h.waitRecord(t, kept, "kept", state("running"))
	h.waitRecord(t, doomed, "doomed", state("running"))

	fw.Cut()
	dockertest.Poll(t, wait, "reporter notices docker is gone", func() error {
		if v := rr.metric(t, "portico_reporter_docker_up"); v != 0 {
			return fmt.Errorf("docker_up = %v", v)
		}
		return nil
	})
	h.env.Remove(t, doomed)
	born := h.env.Run(t, dockertest.RunOptions{Name: "born"})
	if _, ok := h.record(t, born); ok {
		t.Fatal("reporter saw a container while cut off")
	}

	fw.Restore(t)
	back := time.Now()
	h.waitGone(t, catchUp, doomed)
	h.waitRecordWithin(t, catchUp, born, "container started while docker was away", state("running"))
	h.waitRecord(t, kept, "kept", state("running"))
	t.Logf("socket back -> store caught up: %v", time.Since(back))
	// The resync counts itself just after its last delete reached etcd, so
	// the store can be seen caught up a moment before the counter is.
	dockertest.Poll(t, wait, "a resync counted after reconnecting", func() error {
		if n := rr.metric(t, "portico_reporter_resyncs_total"); n < 2 {
			return fmt.Errorf("resyncs_total = %v", n)
		}
		return nil
	})
}

// TestSlowDockerManyContainers syncs more containers than one call timeout
// allows inspecting one after another. Each inspect has its own timeout and
// inspects run in parallel, so the reporter syncs. (A resync used to share
// one 30s budget across all its calls: on a busy daemon a host with a hundred
// containers never synced, and a restarted portico served none of them.)
func TestSlowDockerManyContainers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	fw := dockertest.NewForwarder(t)
	// Generous margins: on a loaded CI daemon one inspect alone can take a
	// second or two on top of the delay.
	const (
		n           = 24
		delay       = time.Second
		callTimeout = 10 * time.Second
	)
	ids := make([]string, n)
	for i := range n {
		ids[i] = h.env.Run(t, dockertest.RunOptions{Name: fmt.Sprintf("slow%02d", i), NoStart: true})
	}
	fw.Delay(delay) // one after another, the inspects alone take n*delay = 24s
	rr := h.start(t, reporter.Config{DockerHost: fw.Host(), CallTimeout: callTimeout,
		Labels: []string{dockertest.RunLabel + "=" + h.env.RunID}})
	select {
	case <-rr.r.Synced():
	case <-time.After(time.Minute):
		t.Fatal("reporter did not sync within a minute")
	}
	for i, id := range ids {
		if _, ok := h.record(t, id); !ok {
			t.Errorf("slow%02d (%s): no record after the first sync", i, id)
		}
	}
	if n := rr.metric(t, "portico_reporter_resyncs_total"); n != 1 {
		t.Errorf("resyncs_total = %v, want 1 (the first resync failed)", n)
	}
}

// TestStoreFailure breaks every etcd call the reporter makes for a while:
// it keeps retrying and catches up once etcd answers again.
func TestStoreFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	kv := &flakyKV{Client: h.etcd.Client}
	kv.broken.Store(true)

	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	r, err := reporter.New(reporter.Config{Host: h.host, Keys: keys, Metrics: reg, Labels: []string{dockertest.RunLabel + "=" + h.env.RunID}}, kv, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	id := h.env.Run(t, dockertest.RunOptions{Name: "patient"})
	dockertest.Poll(t, wait, "reporter tries etcd", func() error {
		if n := kv.failures.Load(); n < 2 {
			return fmt.Errorf("%d failed calls", n)
		}
		return nil
	})
	if _, ok := h.record(t, id); ok {
		t.Fatal("record written while etcd was broken")
	}
	kv.broken.Store(false)
	h.waitRecordWithin(t, catchUp, id, "record after etcd came back", state("running"))
	select {
	case <-r.Synced():
	default:
		t.Error("Synced not closed after catching up")
	}
	// Events after the failure are handled normally again.
	h.env.Stop(t, id)
	h.waitRecord(t, id, "stopped", state("exited"))
}

// flakyKV is the real etcd client with an off switch.
type flakyKV struct {
	*clientv3.Client
	broken   atomic.Bool
	failures atomic.Int64
}

var errInjected = errors.New("injected etcd failure")

func (f *flakyKV) fail() bool {
	if f.broken.Load() {
		f.failures.Add(1)
		return true
	}
	return false
}

func (f *flakyKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if f.fail() {
		return nil, errInjected
	}
	return f.Client.Get(ctx, key, opts...)
}

func (f *flakyKV) Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error) {
	if f.fail() {
		return nil, errInjected
	}
	return f.Client.Delete(ctx, key, opts...)
}

func (f *flakyKV) Txn(ctx context.Context) clientv3.Txn {
	if f.fail() {
		return failedTxn{}
	}
	return f.Client.Txn(ctx)
}

type failedTxn struct{}

func (t failedTxn) If(...clientv3.Cmp) clientv3.Txn      { return t }
func (t failedTxn) Then(...clientv3.Op) clientv3.Txn     { return t }
func (t failedTxn) Else(...clientv3.Op) clientv3.Txn     { return t }
func (failedTxn) Commit() (*clientv3.TxnResponse, error) { return nil, errInjected }
