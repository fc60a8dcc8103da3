package hosts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/store"
)

// HeartbeatConfig configures a Heartbeat.
type HeartbeatConfig struct {
	Host          string
	AdvertiseAddr string
	Keys          store.Keys
	// TTL is the lease's TTL; 0 means DefaultTTL. etcd counts it in whole
	// seconds (rounded up here) and raises it to its own minimum (1.5
	// election timeouts) if need be.
	TTL time.Duration
	// SeenEvery is how often the last-seen key is rewritten; 0 means
	// DefaultSeenEvery.
	SeenEvery time.Duration
	// Metrics registers portico_reporter_heartbeat_up and
	// portico_reporter_heartbeat_grants_total; nil disables them.
	Metrics prometheus.Registerer
}

// Client is the part of the etcd client a heartbeat uses.
type Client interface {
	clientv3.KV
	clientv3.Lease
}

// Heartbeat keeps one host's heartbeat and last-seen keys.
type Heartbeat struct {
	cfg    HeartbeatConfig
	cli    Client
	log    *slog.Logger
	up     prometheus.Gauge
	grants prometheus.Counter
}

// NewHeartbeat checks cfg; Run does the work.
func NewHeartbeat(cfg HeartbeatConfig, cli Client, log *slog.Logger) (*Heartbeat, error) {
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < time.Second {
		return nil, fmt.Errorf("heartbeat: TTL %s: under a second", cfg.TTL)
	}
	if cfg.SeenEvery <= 0 {
		cfg.SeenEvery = DefaultSeenEvery
	}
	h := &Heartbeat{cfg: cfg, cli: cli, log: log,
		up:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "portico_reporter_heartbeat_up", Help: "1 while the reporter's heartbeat lease is kept alive in etcd."}),
		grants: prometheus.NewCounter(prometheus.CounterOpts{Name: "portico_reporter_heartbeat_grants_total", Help: "Heartbeat leases granted: 1 at start, 1 more each time a lease was lost."}),
	}
	if cfg.Metrics != nil {
		for _, c := range []prometheus.Collector{h.up, h.grants} {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("heartbeat: register metrics: %w", err)
			}
		}
	}
	return h, nil
}

// Run keeps the heartbeat until ctx ends, then returns ctx's error. A lost
// lease (etcd unreachable for longer than the TTL) is granted again, with
// backoff. The lease is not revoked at the end: a reporter that restarts
// within the TTL never shows as stale, one that does not is stale a TTL
// later.
func (h *Heartbeat) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		err := h.session(ctx)
		h.up.Set(0)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		h.log.Warn("heartbeat lost; granting a new lease", "host", h.cfg.Host, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

var errLeaseLost = errors.New("lease keepalive ended")

// session grants a lease, writes the keys and keeps the lease alive until
// the keepalive ends.
func (h *Heartbeat) session(ctx context.Context) error {
	call := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, h.cfg.TTL) }
	gctx, cancel := call()
	lease, err := h.cli.Grant(gctx, int64((h.cfg.TTL+time.Second-1)/time.Second))
	cancel()
	if err != nil {
		return fmt.Errorf("grant lease: %w", err)
	}
	h.grants.Inc()
	now := time.Now()
	beat, err := store.Encode(Beat{Host: h.cfg.Host, AdvertiseAddr: h.cfg.AdvertiseAddr, Started: now.UTC()})
	if err != nil {
		return err
	}
	pctx, cancel := call()
	_, err = h.cli.Put(pctx, h.cfg.Keys.HostAlive(h.cfg.Host), string(beat), clientv3.WithLease(lease.ID))
	cancel()
	if err != nil {
		return fmt.Errorf("put %s: %w", h.cfg.Keys.HostAlive(h.cfg.Host), err)
	}
	if err := h.seen(ctx, now); err != nil {
		return err
	}
	kctx, stop := context.WithCancel(ctx)
	defer stop()
	ka, err := h.cli.KeepAlive(kctx, lease.ID)
	if err != nil {
		return fmt.Errorf("keep lease alive: %w", err)
	}
	h.up.Set(1)
	h.log.Info("heartbeat", "host", h.cfg.Host, "lease", fmt.Sprintf("%x", lease.ID), "ttl", h.cfg.TTL)
	tick := time.NewTicker(h.cfg.SeenEvery)
	defer tick.Stop()
	for {
		select {
		case _, ok := <-ka:
			if !ok {
				return errLeaseLost
			}
		case t := <-tick.C:
			if err := h.seen(ctx, t); err != nil {
				// The heartbeat itself is fine; the next tick retries.
				h.log.Warn("last-seen write failed", "host", h.cfg.Host, "err", err)
			}
		}
	}
}

func (h *Heartbeat) seen(ctx context.Context, at time.Time) error {
	b, err := store.Encode(Seen{Host: h.cfg.Host, At: at.UTC().Truncate(time.Second)})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.TTL)
	defer cancel()
	if _, err := h.cli.Put(ctx, h.cfg.Keys.HostSeen(h.cfg.Host), string(b)); err != nil {
		return fmt.Errorf("put %s: %w", h.cfg.Keys.HostSeen(h.cfg.Host), err)
	}
	return nil
}
