package acme

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/dns01"
)

// route is one zone's provider.
type route struct {
	zone     string // normalised: lower case, no trailing dot; "" = every zone
	name     string // provider name for errors, e.g. "dnsupdate"
	provider challenge.Provider
}

// router is a challenge.Provider that hands each domain to the provider of
// the longest zone suffix matching it, or to the default ("") provider.
type router struct {
	routes            []route // longest zone first; the default last
	timeout, interval time.Duration
}

// sequentialRouter is a router whose dns-01 challenges lego solves one after
// another, because one of its providers asks for it (dnsupdate does: two
// records of one name, as for a wildcard and its apex, would clash).
type sequentialRouter struct {
	*router
	sequence time.Duration
}

// Sequential is the interval lego waits between two authorizations.
func (s sequentialRouter) Sequential() time.Duration { return s.sequence }

// dispatchConfig holds the overrides of newRouter; zero keeps the providers'.
type dispatchConfig struct {
	PropagationTimeout, PollingInterval, SequenceInterval time.Duration
}

// newRouter builds the dispatching provider from a zone -> provider map.
// Timeout is the largest of the providers' (lego's defaults for a provider
// without one) unless cfg sets it; likewise the sequence interval.
func newRouter(providers map[string]challenge.Provider, cfg dispatchConfig) (challenge.ProviderTimeout, error) {
	if len(providers) == 0 {
		return nil, fmt.Errorf("no DNS provider configured")
	}
	r := &router{}
	var sequential bool
	var sequence time.Duration
	for zone, p := range providers {
		if p == nil {
			return nil, fmt.Errorf("DNS provider for zone %q is nil", zone)
		}
		z := normalise(zone)
		r.routes = append(r.routes, route{zone: z, name: providerName(p), provider: p})
		timeout, interval := dns01.DefaultPropagationTimeout, dns01.DefaultPollingInterval
		if pt, ok := p.(challenge.ProviderTimeout); ok {
			timeout, interval = pt.Timeout()
		}
		r.timeout, r.interval = max(r.timeout, timeout), max(r.interval, interval)
		if s, ok := p.(interface{ Sequential() time.Duration }); ok {
			sequential, sequence = true, max(sequence, s.Sequential())
		}
	}
	sort.Slice(r.routes, func(a, b int) bool {
		if len(r.routes[a].zone) != len(r.routes[b].zone) {
			return len(r.routes[a].zone) > len(r.routes[b].zone)
		}
		return r.routes[a].zone < r.routes[b].zone
	})
	if cfg.PropagationTimeout > 0 {
		r.timeout = cfg.PropagationTimeout
	}
	if cfg.PollingInterval > 0 {
		r.interval = cfg.PollingInterval
	}
	if cfg.SequenceInterval > 0 {
		sequence = cfg.SequenceInterval
	}
	if sequential {
		return sequentialRouter{router: r, sequence: sequence}, nil
	}
	return r, nil
}

// lookup returns the route for domain: the longest zone equal to it or a
// suffix of it at a label boundary, else the default route.
func (r *router) lookup(domain string) (route, error) {
	d := strings.TrimPrefix(normalise(domain), "*.")
	for _, rt := range r.routes {
		if rt.zone == "" || d == rt.zone || strings.HasSuffix(d, "."+rt.zone) {
			return rt, nil
		}
	}
	zones := make([]string, 0, len(r.routes))
	for _, rt := range r.routes {
		zones = append(zones, rt.zone)
	}
	return route{}, fmt.Errorf("no DNS provider for %s (zones %v, no default)", domain, zones)
}

// Present hands the challenge to the domain's provider.
func (r *router) Present(ctx context.Context, domain, token, keyAuth string) error {
	rt, err := r.lookup(domain)
	if err != nil {
		return fmt.Errorf("dns-01 present for %s: %w", domain, err)
	}
	if err := rt.provider.Present(ctx, domain, token, keyAuth); err != nil {
		return fmt.Errorf("dns-01 present for %s via %s: %w", domain, rt.name, err)
	}
	return nil
}

// CleanUp hands the clean-up to the domain's provider.
func (r *router) CleanUp(ctx context.Context, domain, token, keyAuth string) error {
	rt, err := r.lookup(domain)
	if err != nil {
		return fmt.Errorf("dns-01 cleanup for %s: %w", domain, err)
	}
	if err := rt.provider.CleanUp(ctx, domain, token, keyAuth); err != nil {
		return fmt.Errorf("dns-01 cleanup for %s via %s: %w", domain, rt.name, err)
	}
	return nil
}

// Timeout is the propagation timeout and polling interval lego uses.
func (r *router) Timeout() (timeout, interval time.Duration) { return r.timeout, r.interval }

// normalise lower-cases a zone or domain and drops its trailing dot.
func normalise(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// providerName names a lego provider by its package, which lego names after
// the provider's code: *dnsupdate.DNSProvider -> "dnsupdate".
func providerName(p challenge.Provider) string {
	n := strings.TrimLeft(fmt.Sprintf("%T", p), "*")
	if pkg, _, ok := strings.Cut(n, "."); ok {
		return pkg
	}
	return n
}
