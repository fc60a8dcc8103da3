package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico/portico/internal/store"
)

// embeddedEtcd runs the embedded etcd of `portico run` as a stage that
// never stops the others: if etcd fails to start or dies, it reports the
// failure (log at error, portico_embedded_etcd_up 0) and starts it again
// with backoff, on the same client address, while the supervised nginx
// keeps serving its last good config and the other stages retry. Only
// the end of ctx (SIGTERM) ends it, even during a start that hangs.
type embeddedEtcd struct {
	cfg store.EmbeddedConfig
	log *slog.Logger
	up  prometheus.Gauge

	mu  sync.Mutex
	srv *store.Embedded // the running server, closed by Close
}

// Close stops the server. Run leaves it running when ctx ends: call Close
// after the other stages and the client are done, so etcd's graceful stop
// does not wait for their watches.
func (e *embeddedEtcd) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv != nil {
		e.srv.Close()
		e.srv = nil
	}
}

func newEmbeddedEtcd(cfg store.EmbeddedConfig, reg prometheus.Registerer, log *slog.Logger) (*embeddedEtcd, error) {
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "portico_embedded_etcd_up",
		Help: "1 while the embedded etcd serves, 0 while it fails (nginx keeps its last good config)."})
	if err := reg.Register(up); err != nil {
		return nil, fmt.Errorf("embedded etcd metrics: %w", err)
	}
	return &embeddedEtcd{cfg: cfg, log: log, up: up}, nil
}

func (e *embeddedEtcd) Run(ctx context.Context) error {
	backoff := time.Second
	for {
		started := time.Now()
		srv, err := e.start(ctx)
		if err == nil {
			e.mu.Lock()
			e.srv = srv
			e.mu.Unlock()
			e.up.Set(1)
			e.log.Info("embedded etcd serving", "endpoint", srv.Endpoint(), "dir", e.cfg.Dir)
			select {
			case <-ctx.Done():
				return ctx.Err() // Close stops it
			case err = <-srv.Err():
				e.Close()
				if err == nil {
					err = fmt.Errorf("stopped")
				}
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e.up.Set(0)
		if time.Since(started) > 5*time.Minute {
			backoff = time.Second
		}
		e.log.Error("embedded etcd failed; nginx keeps serving its last good config; starting etcd again",
			"err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

// start starts etcd, but returns as soon as ctx ends: a start that waits
// on a lock or a slow disk must not make SIGTERM wait.
func (e *embeddedEtcd) start(ctx context.Context) (*store.Embedded, error) {
	type result struct {
		srv *store.Embedded
		err error
	}
	ch := make(chan result, 1)
	go func() {
		srv, err := store.StartEmbedded(e.cfg)
		ch <- result{srv, err}
	}()
	select {
	case r := <-ch:
		return r.srv, r.err
	case <-ctx.Done():
		go func() { // close whatever the start ends with
			if r := <-ch; r.err == nil {
				r.srv.Close()
			}
		}()
		return nil, ctx.Err()
	}
}
