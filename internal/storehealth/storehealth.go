// Package storehealth says whether a stage reaches the etcd cluster. It
// asks the cluster a linearizable read of one key the stage may read,
// every Interval, and calls the store down once no read has succeeded for
// DownAfter: a leader election (a second or two without answers) does not
// flip it, a partition does. The answer is exported as metrics
// (portico_store_up, portico_store_last_ok_timestamp_seconds), served as
// /readyz on the metrics address (503 while down) and logged once per
// change. The stage itself goes on serving its last good state: this only
// tells the operator, and a load balancer, that it may be out of date.
package storehealth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/redact"
)

// Getter is the part of the etcd client the probe uses.
type Getter interface {
	Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error)
}

// Config configures a Probe.
type Config struct {
	// Key is read (count only) at each probe: one the stage's etcd role
	// may read.
	Key string
	// Interval between probes while the store is up; 0 means 1s. While
	// it is down, a quarter of it.
	Interval time.Duration
	// Timeout of one read; 0 means 1s.
	Timeout time.Duration
	// DownAfter is how long without a successful read makes the store
	// down; 0 means 3s.
	DownAfter time.Duration
	// Metrics, when set, receives the probe's metrics.
	Metrics prometheus.Registerer
}

// State is what the probe knows.
type State struct {
	// Up: a read succeeded within DownAfter.
	Up bool
	// Since is when Up last changed (the probe's start at first).
	Since time.Time
	// LastOK is when a read last succeeded; zero: never.
	LastOK time.Time
	// Err is the last failed read's error, while reads fail.
	Err string
}

// Judge is the decision: the state after a probe at now that succeeded
// (err nil) or failed. Up once a read succeeds; down once no read
// succeeded for downAfter since the last success. Before the first
// success it is down.
func Judge(prev State, err error, now time.Time, downAfter time.Duration) State {
	next := prev
	if err == nil {
		next.LastOK, next.Err = now, ""
		if !prev.Up {
			next.Up, next.Since = true, now
		}
		return next
	}
	next.Err = err.Error()
	if prev.Up && now.Sub(prev.LastOK) >= downAfter {
		next.Up, next.Since = false, now
	}
	return next
}

// Readiness is the answer of /readyz for s at now: 200 while the store is
// up, else 503, with one line that says since when and why.
func Readiness(s State, now time.Time) (int, string) {
	if s.Up {
		return http.StatusOK, fmt.Sprintf("ok: store reached %s ago\n", now.Sub(s.LastOK).Round(time.Millisecond))
	}
	last := "never since the start"
	if !s.LastOK.IsZero() {
		last = fmt.Sprintf("%s ago", now.Sub(s.LastOK).Round(time.Millisecond))
	}
	why := s.Err
	if why == "" {
		why = "no answer yet"
	}
	return http.StatusServiceUnavailable, fmt.Sprintf("store unreachable since %s (last reached %s): %s; serving the last good state\n",
		s.Since.UTC().Format(time.RFC3339), last, why)
}

// Probe asks the store at intervals and keeps its State.
type Probe struct {
	cfg Config
	cli Getter
	log *slog.Logger

	up, lastOK prometheus.Gauge

	mu sync.Mutex
	st State
}

// New makes a probe; Run probes.
func New(cfg Config, cli Getter, log *slog.Logger) (*Probe, error) {
	if cfg.Key == "" {
		return nil, errors.New("store health: no key to read")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.DownAfter <= 0 {
		cfg.DownAfter = 3 * time.Second
	}
	p := &Probe{cfg: cfg, cli: cli, log: log, st: State{Since: time.Now()},
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "portico_store_up",
			Help: "1 while this process reaches the etcd cluster (a linearizable read within the last 3 s), 0 while it serves its last good state without it."}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "portico_store_last_ok_timestamp_seconds",
			Help: "When a read of the etcd cluster last succeeded."}),
	}
	if cfg.Metrics != nil {
		for _, c := range []prometheus.Collector{p.up, p.lastOK} {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("store health metrics: %w", err)
			}
		}
	}
	return p, nil
}

// State is the current state.
func (p *Probe) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// Run probes until ctx ends.
func (p *Probe) Run(ctx context.Context) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		_, err := p.cli.Get(rctx, p.cfg.Key, clientv3.WithCountOnly())
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			err = errors.New(redact.Error(fmt.Errorf("read %s: %w", p.cfg.Key, err)))
		}
		p.observe(err, time.Now())
		// While down, ask more often: the heal is seen sooner.
		wait := p.cfg.Interval
		if !p.State().Up {
			wait /= 4
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (p *Probe) observe(err error, now time.Time) {
	p.mu.Lock()
	prev := p.st
	p.st = Judge(prev, err, now, p.cfg.DownAfter)
	st := p.st
	p.mu.Unlock()
	if st.Up {
		p.up.Set(1)
		p.lastOK.Set(float64(st.LastOK.UnixNano()) / 1e9)
	} else {
		p.up.Set(0)
	}
	switch {
	case st.Up && !prev.Up && !prev.LastOK.IsZero():
		p.log.Info("store reachable again", "unreachable_for", now.Sub(prev.Since).Round(time.Millisecond))
	case !st.Up && prev.Up:
		p.log.Error("store unreachable; serving the last good state until it answers", "last_reached", prev.LastOK.UTC().Format(time.RFC3339Nano), "err", st.Err)
	}
}

// ServeHTTP answers /readyz (Readiness).
func (p *Probe) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	code, body := Readiness(p.State(), time.Now())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprint(w, body)
}
