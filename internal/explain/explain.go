// Package explain builds what `portico explain <host>` shows: the chain from
// the container records that claim a name to the route, its certificate, the
// server block nginx gets and whether each nginx instance applied it, and,
// when the name is not served, why. It is pure: the command reads the keys
// from etcd, this package decides (with the routing, certs and nginx
// packages' own functions) and formats.
package explain

import (
	"fmt"
	"strings"
	"time"

	"github.com/portico/portico/internal/certs"
	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// Input is everything an explanation depends on.
type Input struct {
	// Host is the name asked about, as typed (it is normalized).
	Host string
	// Entries are every key under Keys' prefix, with their revisions (the
	// create revision decides who owns a contested vhost).
	Entries map[string]store.Entry
	Keys    store.Keys
	// Routing are the options the nginx and certs stages build routes
	// with (--network, --allowed-domains).
	Routing routing.Options
	// Render are the nginx settings the server block is rendered with; they
	// should be the nginx stage's (listen addresses, template, version).
	Render render.Settings
	Now    time.Time
}

// Explanation is the answer.
type Explanation struct {
	// Host is the normalized name; Asked the name as given, when it differs.
	Host  string `json:"host"`
	Asked string `json:"asked,omitempty"`
	// Served is true when a route serves the name and at least one nginx
	// instance applied it as it is now.
	Served  bool   `json:"served"`
	Summary string `json:"summary"`
	// Why lists, in order, what keeps the name from being served, or served
	// the way its labels ask; empty when nothing does.
	Why         []string     `json:"why,omitempty"`
	Claims      []Claim      `json:"claims"`
	Route       *Route       `json:"route,omitempty"`
	Certificate *Certificate `json:"certificate,omitempty"`
	// ServerBlock is the route's server block rendered with the real
	// template; RenderError says why there is none.
	ServerBlock string `json:"server_block,omitempty"`
	// DynamicLine is the route's line in the dynamic path's table
	// (docs/nginx.md): what nginx serves instead of ServerBlock when the
	// nginx stage runs the dynamic path, its default.
	DynamicLine string     `json:"dynamic_line,omitempty"`
	RenderError string     `json:"render_error,omitempty"`
	Nginx       []Instance `json:"nginx"`
	// Unreadable are records that could not be read or were rejected by
	// the reporter: any of them might claim the name.
	Unreadable []string `json:"unreadable,omitempty"`
}

// Claim outcomes.
const (
	ClaimAccepted   = "accepted"       // the container serves the name
	ClaimConflict   = "claim rejected" // a container that claimed it first set other settings
	ClaimRejected   = "rejected"       // the container is rejected (see its problems)
	ClaimNotAllowed = "not allowed"    // --allowed-domains does not let its node claim the name
	ClaimIgnored    = "ignored"        // portico.enable=false
	ClaimDropped    = "dropped"        // routing accepted it, the nginx stage's route check did not
)

// Claim is one container that claims the name, exactly or through a
// wildcard.
type Claim struct {
	Key       string `json:"key"`
	Container string `json:"container"`
	Node      string `json:"node"`
	ID        string `json:"id"`
	Image     string `json:"image,omitempty"`
	State     string `json:"state"`
	Health    string `json:"health,omitempty"`
	// Labels are the record's Portico labels; Env its allow-listed
	// environment (VIRTUAL_HOST and friends).
	Labels map[string]string `json:"labels,omitempty"`
	Env    map[string]string `json:"env,omitempty"`
	// Name is the claimed name that matches: the host itself or a
	// wildcard covering it.
	Name    string `json:"name"`
	Outcome string `json:"outcome"`
	// Reason says why the outcome is not ClaimAccepted.
	Reason   string            `json:"reason,omitempty"`
	Settings *Settings         `json:"settings,omitempty"`
	Problems []routing.Problem `json:"problems,omitempty"`
}

// Settings are what routing parsed from a container.
type Settings struct {
	Hosts     []string `json:"hosts"`
	CertHosts []string `json:"cert_hosts,omitempty"`
	Port      int      `json:"port"`
	Protocol  string   `json:"protocol"`
	Network   string   `json:"network,omitempty"`
	Addr      string   `json:"addr,omitempty"`
	Live      bool     `json:"live"`
	HTTPS     string   `json:"https"`
	HSTS      string   `json:"hsts,omitempty"` // the header value; "" is off
	Default   bool     `json:"default,omitempty"`
}

// Route is the route that serves the name.
type Route struct {
	Host string `json:"host"`
	// Wildcard is set when Host is a "*." route that covers the name.
	Wildcard   bool     `json:"wildcard,omitempty"`
	Protocol   string   `json:"protocol"`
	HTTPS      string   `json:"https"`
	HSTS       string   `json:"hsts,omitempty"` // the header value; "" is off
	Default    bool     `json:"default,omitempty"`
	Upstreams  []string `json:"upstreams"`
	Containers []string `json:"containers"`
	// Paths are the vhost's path prefixes other than "/", longest first;
	// NoRoot is set when no container serves "/" (404 elsewhere).
	Paths  []Path `json:"paths,omitempty"`
	NoRoot bool   `json:"no_root,omitempty"`
	// Digest is render.RouteDigest of the route, compared with each
	// instance's applied routes.
	Digest string `json:"digest"`
}

// Path is one path prefix of the route and what serves it.
type Path struct {
	Path       string   `json:"path"`
	Strip      bool     `json:"strip,omitempty"`
	Dest       string   `json:"dest,omitempty"`
	Protocol   string   `json:"protocol"`
	Upstreams  []string `json:"upstreams"`
	Containers []string `json:"containers"`
}

// Certificate is what serves, or would serve, the route over HTTPS.
type Certificate struct {
	// HTTPS is true when the route is served over HTTPS; Redirect when
	// plain HTTP is redirected to it. Reason says why, either way.
	HTTPS    bool   `json:"https"`
	Redirect bool   `json:"redirect"`
	Reason   string `json:"reason"`
	// Primary..NotAfter describe the certificate the renderer picks (or,
	// when there is none yet, the one the certs stage wants).
	Primary   string    `json:"primary,omitempty"`
	Names     []string  `json:"names,omitempty"`
	Issuer    string    `json:"issuer,omitempty"`
	IssuerURL string    `json:"issuer_url,omitempty"`
	Serial    string    `json:"serial,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	// Condition, NextRenewal, Error and RetryAt come from the certs
	// stage's status (certs.Report).
	Condition   string    `json:"condition,omitempty"`
	NextRenewal time.Time `json:"next_renewal,omitzero"`
	Error       string    `json:"error,omitempty"`
	RetryAt     time.Time `json:"retry_at,omitzero"`
	// Rejected are the errors of stored bundles that would cover the name
	// but that the nginx stage's bundle check refuses.
	Rejected []string `json:"rejected,omitempty"`
}

// Instance states.
const (
	InstanceApplied = "applied"     // its config holds the route as it is now
	InstanceStale   = "stale"       // its config holds an older version of the route
	InstanceMissing = "not applied" // its config does not hold the route (yet)
	InstanceError   = "error"       // its last apply left the route out, or failed
	InstanceUnknown = "unknown"     // its status does not list routes
)

// Instance is one nginx stage's view of the route.
type Instance struct {
	Instance string `json:"instance"`
	State    string `json:"state"`
	Detail   string `json:"detail"`
	// Config is the applied config's hash.
	Config string `json:"config,omitempty"`
}

// Build explains in.Host.
func Build(in Input) Explanation {
	x := Explanation{Host: normalize(in.Host)}
	if x.Host != in.Host {
		x.Asked = in.Host
	}
	if _, err := certs.NormalizeName(in.Host); err != nil {
		x.Why = append(x.Why, "not a valid host name: "+err.Error())
	}
	snap := readSnapshot(in)
	x.Unreadable = snap.unreadable
	res := routing.Build(snap.containers, in.Routing)
	routes, routeErrs := render.CheckRoutes(res.Routes)
	route, wildcard := findRoute(routes, x.Host)
	x.Claims = claims(snap, res, routes, in.Routing, x.Host)
	claimWhy(&x, route, routeErrs)
	if route != nil {
		x.Route = &Route{Host: route.Host, Wildcard: wildcard, Protocol: route.Protocol, HTTPS: route.HTTPS, HSTS: route.HSTS.Header(),
			Default: route.Default, Upstreams: nonNil(route.Upstreams), Containers: nonNil(route.Containers), Digest: render.RouteDigest(*route),
			NoRoot: route.NoRoot}
		for _, p := range route.Paths {
			x.Route.Paths = append(x.Route.Paths, Path{Path: p.Path, Strip: p.Strip, Dest: p.Dest, Protocol: p.Protocol,
				Upstreams: nonNil(p.Upstreams), Containers: nonNil(p.Containers)})
		}
		if len(route.Upstreams) == 0 && !route.NoRoot {
			x.Why = append(x.Why, "no replica is live: nginx answers 503 for it")
		}
		explainCert(&x, in, snap, *route)
	}
	x.Nginx = instances(snap.nginx, route, x.Host)
	served := false
	for _, n := range x.Nginx {
		served = served || n.State == InstanceApplied
	}
	// blocking is the reason the summary gives: without a route, the
	// claims' first; with one, that no instance applied it.
	blocking := ""
	if len(x.Why) > 0 {
		blocking = x.Why[0]
	}
	switch {
	case route == nil:
	case len(x.Nginx) == 0:
		blocking = "not yet applied: no nginx stage has reported (no status/nginx/ record)"
		x.Why = append(x.Why, blocking)
	case !served:
		for i, n := range x.Nginx {
			msg := fmt.Sprintf("not yet applied by nginx instance %q (%s): %s", n.Instance, n.State, n.Detail)
			if i == 0 {
				blocking = msg
			}
			x.Why = append(x.Why, msg)
		}
	}
	x.Served = route != nil && served
	x.Summary = summary(x, blocking)
	return x
}

// findRoute returns the route nginx picks for host: the exact one, else the
// longest "*." route whose domain the host lies under (nginx's wildcard
// server_name matches any depth below it), else the longest ".*" route
// whose name the host starts with.
func findRoute(routes []routing.Route, host string) (*routing.Route, bool) {
	var best, tail *routing.Route
	for i := range routes {
		r := &routes[i]
		if r.Host == host {
			return r, false
		}
		if d, ok := strings.CutPrefix(r.Host, "*."); ok && strings.HasSuffix(host, "."+d) && (best == nil || len(r.Host) > len(best.Host)) {
			best = r
		}
		if coversTail(r.Host, host) && (tail == nil || len(r.Host) > len(tail.Host)) {
			tail = r
		}
	}
	if best == nil {
		best = tail
	}
	return best, best != nil
}

// covers reports whether a claimed name (exact, "*." or ".*") matches
// host the way nginx's server_name does.
func covers(name, host string) bool {
	if name == host || coversTail(name, host) {
		return true
	}
	d, ok := strings.CutPrefix(name, "*.")
	return ok && strings.HasSuffix(host, "."+d)
}

// coversTail reports whether a trailing wildcard "a.b.*" matches host: host
// is "a.b." and at least one more label.
func coversTail(name, host string) bool {
	p, ok := strings.CutSuffix(name, "*")
	return ok && strings.HasSuffix(p, ".") && len(host) > len(p) && strings.HasPrefix(host, p) && !strings.HasSuffix(host, ".")
}

func normalize(h string) string {
	h = strings.TrimSpace(h)
	if n, err := certs.NormalizeName(h); err == nil {
		return n
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

func summary(x Explanation, blocking string) string {
	if !x.Served {
		if blocking == "" {
			return x.Host + " is not served"
		}
		return x.Host + " is not served: " + blocking
	}
	var s strings.Builder
	s.WriteString(x.Host + " is served")
	if x.Route.Wildcard {
		s.WriteString(" by the wildcard route " + x.Route.Host)
	}
	switch c := x.Certificate; {
	case c != nil && c.HTTPS && c.Redirect:
		s.WriteString(" over HTTPS (HTTP redirects to it)")
	case c != nil && c.HTTPS:
		s.WriteString(" over HTTP and HTTPS")
	default:
		s.WriteString(" over HTTP only")
	}
	var by []string
	for _, n := range x.Nginx {
		if n.State == InstanceApplied {
			by = append(by, n.Instance)
		}
	}
	s.WriteString(", applied by " + strings.Join(by, ", "))
	return s.String()
}
