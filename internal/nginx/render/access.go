package render

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"time"

	"github.com/portico/portico/internal/siteopts"
)

// The access and limit options (package siteopts, Access) in the rendered
// config. On the static path each is nginx's own directive in the vhost's
// server or location: allow/deny, auth_basic, client_max_body_size,
// proxy_*_timeout, limit_req. On the dynamic path portico.lua applies them
// per request from the table; the config only holds what Lua cannot set:
// the body-size ceiling, the auth_basic variables and the rate dictionary
// (docs/nginx.md, "Per-site options").

// Dynamic path constants.
const (
	// ratesZone holds the dynamic path's rate-limit states, one per route
	// and client address (about 100 bytes each with the dictionary's
	// overhead): some 150,000; the least recently used go first.
	ratesZone = "16m"
	// rateZoneSize is each static limit_req zone (one per rate in use):
	// some 80,000 states of a binary address and a server name.
	rateZoneSize = "10m"
)

// defaultConnectTimeout is the upstream connect timeout without
// portico.connect-timeout: a replica that vanished without a reset is
// skipped after 5s, not nginx's 60s.
const defaultConnectTimeout = 5 * time.Second

// rateZone is one static limit_req zone: every vhost with that rate
// shares it, keyed by client address and server name, so that a vhost's
// requests never count against another's.
type rateZone struct{ Name, Rate string }

// rateZoneName names the zone of rate r: "portico_rate_10r_s".
func rateZoneName(r siteopts.Rate) string {
	u := "s"
	if r.Per == time.Minute {
		u = "m"
	}
	return "portico_rate_" + strconv.Itoa(r.N) + "r_" + u
}

// rateZones lists the zones the vhosts use, sorted by name.
func rateZones(vs []vhost) []rateZone {
	seen := map[string]bool{}
	var zs []rateZone
	for _, h := range vs {
		if r := h.Site.Rate; r.N > 0 && !seen[rateZoneName(r)] {
			seen[rateZoneName(r)] = true
			zs = append(zs, rateZone{Name: rateZoneName(r), Rate: r.String()})
		}
	}
	slices.SortFunc(zs, func(a, b rateZone) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return zs
}

// checkAccess refuses a vhost whose options the config cannot hold.
func checkAccess(h vhost) error {
	if h.Site.AuthFile != "" && h.sh.AuthDir == "" {
		return fmt.Errorf("route %q: portico.auth-file %q but no auth dir", h.Host, h.Site.AuthFile)
	}
	if _, err := siteopts.ParseAuthFile(h.Site.AuthFile); h.Site.AuthFile != "" && err != nil {
		return fmt.Errorf("route %q: portico.auth-file %q: %w", h.Host, h.Site.AuthFile, err)
	}
	return nil
}

// Template helpers of a vhost's access options.

// AllowList is the canonical CIDRs of portico.allow; empty: everyone.
func (h vhost) AllowList() []string {
	out := make([]string, len(h.Site.Allow))
	for i, p := range h.Site.Allow {
		out[i] = p.String()
	}
	return out
}

// AuthUserFile is the htpasswd copy nginx reads; "" without auth.
func (h vhost) AuthUserFile() string {
	if h.Site.AuthFile == "" {
		return ""
	}
	return path.Join(h.sh.AuthDir, h.Site.AuthFile)
}

// MaxBody is client_max_body_size's value ("0": none); "" leaves nginx's
// default, which is siteopts.DefaultMaxBody.
func (h vhost) MaxBody() string {
	if !h.Site.MaxBody.Set {
		return ""
	}
	return h.Site.MaxBody.String()
}

// ConnectTimeout is the proxy/grpc connect timeout.
func (h vhost) ConnectTimeout() string {
	if h.Site.ConnectTimeout > 0 {
		return siteopts.Millis(h.Site.ConnectTimeout)
	}
	return strconv.Itoa(int(defaultConnectTimeout/time.Second)) + "s"
}

// Timeout is the read and send timeout; "" leaves nginx's 60s.
func (h vhost) Timeout() string {
	if h.Site.Timeout > 0 {
		return siteopts.Millis(h.Site.Timeout)
	}
	return ""
}

// RateZone is the vhost's limit_req zone; "" without a rate.
func (h vhost) RateZone() string {
	if h.Site.Rate.N == 0 {
		return ""
	}
	return rateZoneName(h.Site.Rate)
}

// RateBurst is limit_req's burst.
func (h vhost) RateBurst() int { return h.Site.EffectiveBurst() }

// ConnectTimeout and Timeout of a path location are its vhost's (a path
// prefix sets no per-site option): the location's proxy directives
// replace the server's.
func (p pathView) ConnectTimeout() string { return vhost{Site: p.Site}.ConnectTimeout() }

// Timeout: see pathView.ConnectTimeout.
func (p pathView) Timeout() string { return vhost{Site: p.Site}.Timeout() }
