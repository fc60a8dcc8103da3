package storehealth

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestJudge(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	fail := errors.New("context deadline exceeded")
	const after = 3 * time.Second
	for _, tc := range []struct {
		name string
		prev State
		err  error
		now  time.Time
		want State
	}{
		{"first success: up", State{Since: t0}, nil, at(0.1), State{Up: true, Since: at(0.1), LastOK: at(0.1)}},
		{"no answer at start: down", State{Since: t0}, fail, at(5), State{Since: t0, Err: fail.Error()}},
		{"success while up: since kept", State{Up: true, Since: t0, LastOK: at(1)}, nil, at(2), State{Up: true, Since: t0, LastOK: at(2)}},
		{"failures under downAfter (an election): still up", State{Up: true, Since: t0, LastOK: at(1)}, fail, at(3.9), State{Up: true, Since: t0, LastOK: at(1), Err: fail.Error()}},
		{"failures for downAfter: down", State{Up: true, Since: t0, LastOK: at(1)}, fail, at(4), State{Since: at(4), LastOK: at(1), Err: fail.Error()}},
		{"still down: since kept", State{Since: at(4), LastOK: at(1), Err: "x"}, fail, at(30), State{Since: at(4), LastOK: at(1), Err: fail.Error()}},
		{"heal: up at the first success", State{Since: at(4), LastOK: at(1), Err: "x"}, nil, at(34), State{Up: true, Since: at(34), LastOK: at(34)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Judge(tc.prev, tc.err, tc.now, after); got != tc.want {
				t.Errorf("Judge = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestReadiness(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)
	code, body := Readiness(State{Up: true, Since: now.Add(-time.Minute), LastOK: now.Add(-300 * time.Millisecond)}, now)
	if code != 200 || body != "ok: store reached 300ms ago\n" {
		t.Errorf("up: %d %q", code, body)
	}
	code, body = Readiness(State{Since: now.Add(-20 * time.Second), LastOK: now.Add(-23 * time.Second), Err: "read k: context deadline exceeded"}, now)
	want := "store unreachable since 2026-01-01T00:00:40Z (last reached 23s ago): read k: context deadline exceeded; serving the last good state\n"
	if code != 503 || body != want {
		t.Errorf("down: %d %q, want %q", code, body, want)
	}
	if code, body = Readiness(State{Since: now}, now); code != 503 || !strings.Contains(body, "never since the start") || !strings.Contains(body, "no answer yet") {
		t.Errorf("never reached: %d %q", code, body)
	}
}

// getter fails while down is set.
type getter struct {
	down  atomic.Bool
	calls atomic.Int64
	key   atomic.Value
}

func (g *getter) Get(ctx context.Context, key string, _ ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	g.calls.Add(1)
	g.key.Store(key)
	if g.down.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &clientv3.GetResponse{}, nil
}

// TestProbeRun: the loop reads the key, exports up and down, and /readyz
// follows.
func TestProbeRun(t *testing.T) {
	g := &getter{}
	reg := prometheus.NewRegistry()
	p, err := New(Config{Key: "/portico/status/nginx/a", Interval: 10 * time.Millisecond, Timeout: 20 * time.Millisecond,
		DownAfter: 60 * time.Millisecond, Metrics: reg}, g, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wait := func(what string, f func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !f() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: state %+v", what, p.State())
			}
			<-time.After(5 * time.Millisecond)
		}
	}
	ready := func() int {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code
	}
	wait("up", func() bool { return p.State().Up && testutil.ToFloat64(p.up) == 1 && ready() == http.StatusOK })
	if k := g.key.Load(); k != "/portico/status/nginx/a" {
		t.Errorf("read %v", k)
	}
	g.down.Store(true)
	wait("down", func() bool {
		return !p.State().Up && testutil.ToFloat64(p.up) == 0 && ready() == http.StatusServiceUnavailable
	})
	g.down.Store(false)
	wait("up again", func() bool { return p.State().Up && testutil.ToFloat64(p.up) == 1 && ready() == http.StatusOK })
	if n, err := testutil.GatherAndCount(reg, "portico_store_up", "portico_store_last_ok_timestamp_seconds"); err != nil || n != 2 {
		t.Errorf("metrics: %d %v", n, err)
	}
}

func TestNewNeedsKey(t *testing.T) {
	if _, err := New(Config{}, &getter{}, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Error("no error without a key")
	}
}
