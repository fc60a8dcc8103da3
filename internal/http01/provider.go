package http01

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/store"
)

// Client is the part of the etcd client Provider uses.
type Client interface {
	Grant(ctx context.Context, ttl int64) (*clientv3.LeaseGrantResponse, error)
	Revoke(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseRevokeResponse, error)
	Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error)
	Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error)
	Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error)
}

// Defaults for ProviderConfig.
const (
	// DefaultTTL is the lease of a stored token: a token its certs stage
	// never removed (a crash) expires after it. An order lasts at most
	// certs.DefaultObtainTimeout (10 minutes).
	DefaultTTL = 15 * time.Minute
	// DefaultServedWait bounds Present's wait for every live proxy to
	// acknowledge the token.
	DefaultServedWait = 5 * time.Second
	// removeTimeout bounds the removal of a token after its order ended,
	// whatever the order's context says.
	removeTimeout = 5 * time.Second
	servedPoll    = 20 * time.Millisecond
)

// ProviderConfig configures a Provider. Zero durations mean the defaults.
type ProviderConfig struct {
	Keys       store.Keys
	TTL        time.Duration
	ServedWait time.Duration
}

// Provider is lego's challenge.Provider for http-01: Present stores the key
// authorization in etcd under a lease and waits until every live nginx
// stage serves it; CleanUp revokes the lease, which deletes the key. Guard
// removes whatever an order left behind. Safe for concurrent orders.
type Provider struct {
	cli Client
	cfg ProviderConfig
	log *slog.Logger

	mu     sync.Mutex
	leases map[string]clientv3.LeaseID // token -> its lease
}

// NewProvider returns a Provider storing through cli.
func NewProvider(cli Client, cfg ProviderConfig, log *slog.Logger) *Provider {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.ServedWait <= 0 {
		cfg.ServedWait = DefaultServedWait
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{cli: cli, cfg: cfg, log: log, leases: map[string]clientv3.LeaseID{}}
}

type orderKey struct{}

// order is the set of tokens one Obtain presented.
type order struct {
	mu     sync.Mutex
	tokens []string
}

// Guard returns a context for one order and a function to call when the
// order ends, whatever its outcome: it removes every token the order
// presented that CleanUp did not (lego skips CleanUp when Present failed
// half-way; a cancelled order may fail its clean-up).
func (p *Provider) Guard(ctx context.Context) (context.Context, func()) {
	o := &order{}
	return context.WithValue(ctx, orderKey{}, o), func() {
		o.mu.Lock()
		tokens := slices.Clone(o.tokens)
		o.mu.Unlock()
		for _, t := range tokens {
			if err := p.remove(context.WithoutCancel(ctx), t); err != nil {
				p.log.Warn("http-01 token not removed; it expires with its lease", "token", t, "ttl", p.cfg.TTL, "err", err)
			}
		}
	}
}

// Present stores the challenge and waits (up to ServedWait) until every
// live nginx stage serves it.
func (p *Provider) Present(ctx context.Context, domain, token, keyAuth string) error {
	rec := Record{Token: token, KeyAuth: keyAuth, Domain: strings.TrimSuffix(strings.ToLower(domain), ".")}
	val, err := rec.Encode()
	if err != nil {
		return fmt.Errorf("http-01 present for %s: %w", domain, err)
	}
	key := p.cfg.Keys.HTTP01Token(token)
	lease, err := p.cli.Grant(ctx, int64(max(p.cfg.TTL/time.Second, 1)))
	if err != nil {
		return fmt.Errorf("http-01 present for %s: lease: %w", domain, err)
	}
	p.mu.Lock()
	p.leases[token] = lease.ID
	p.mu.Unlock()
	if o, ok := ctx.Value(orderKey{}).(*order); ok {
		o.mu.Lock()
		o.tokens = append(o.tokens, token)
		o.mu.Unlock()
	}
	if _, err := p.cli.Put(ctx, key, string(val), clientv3.WithLease(lease.ID)); err != nil {
		return fmt.Errorf("http-01 present for %s: put %q: %w", domain, key, err)
	}
	start := time.Now()
	if err := p.waitServed(ctx, token); err != nil {
		p.log.Warn("http-01 token not acknowledged by every proxy; asking the CA to validate anyway", "domain", domain, "err", err)
	} else {
		p.log.Debug("http-01 token served by every proxy", "domain", domain, "after", time.Since(start))
	}
	return nil
}

// CleanUp removes the challenge.
func (p *Provider) CleanUp(ctx context.Context, domain, token, _ string) error {
	if err := p.remove(ctx, token); err != nil {
		return fmt.Errorf("http-01 clean-up for %s: %w", domain, err)
	}
	return nil
}

// remove revokes token's lease (deleting its key), or deletes the key if
// the revocation fails. It is a no-op for a token already removed.
func (p *Provider) remove(ctx context.Context, token string) error {
	p.mu.Lock()
	lease, ok := p.leases[token]
	delete(p.leases, token)
	p.mu.Unlock()
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), removeTimeout)
	defer cancel()
	_, rerr := p.cli.Revoke(ctx, lease)
	if rerr == nil {
		return nil
	}
	key := p.cfg.Keys.HTTP01Token(token)
	if _, err := p.cli.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete %q: %w (revoke: %w)", key, err, rerr)
	}
	return nil
}

// Served is an nginx stage's acknowledgement, under
// Keys.HTTP01ServedBy(Instance), leased to the stage's session: the
// tokens its proxy answers now.
type Served struct {
	Instance string   `json:"instance"`
	Tokens   []string `json:"tokens"`
}

// errNotServed is waitServed's timeout.
var errNotServed = errors.New("not served in time")

// waitServed polls the acknowledgements until each lists token. With none
// stored (no nginx stage running, or one too old to acknowledge) it returns
// at once.
func (p *Provider) waitServed(ctx context.Context, token string) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ServedWait)
	defer cancel()
	t := time.NewTicker(servedPoll)
	defer t.Stop()
	var missing []string
	for {
		resp, err := p.cli.Get(ctx, p.cfg.Keys.HTTP01Served(), clientv3.WithPrefix())
		if err == nil {
			missing = missing[:0]
			for _, kv := range resp.Kvs {
				var s Served
				if json.Unmarshal(kv.Value, &s) != nil || !slices.Contains(s.Tokens, token) {
					missing = append(missing, store.Last(string(kv.Key)))
				}
			}
			if len(missing) == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("%w: %w", errNotServed, err)
			}
			return fmt.Errorf("%w: waiting for %v", errNotServed, missing)
		case <-t.C:
		}
	}
}
