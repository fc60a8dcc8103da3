// Package nginx is the nginx stage: it mirrors container records and
// certificates from etcd, renders one server block per vhost, validates the
// result with `nginx -t` and reloads nginx, never applying a broken config.
package nginx

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"hash/fnv"
	"path"
	"slices"
	"strings"
	"text/template"

	"github.com/portico/portico/internal/routing"
)

//go:embed templates/portico.conf.tmpl
var defaultTemplate string

// DefaultTemplate returns the embedded template text, a starting point for
// an override.
func DefaultTemplate() string { return defaultTemplate }

// Settings are the proxy-wide choices that shape the rendered config.
type Settings struct {
	// HTTPAddrs are the plain-HTTP listen addresses (":80", "127.0.0.1:8080",
	// "[::]:80"); empty means ":80".
	HTTPAddrs []string
	// HTTPSAddrs are the TLS listen addresses. Empty means no TLS server at
	// all, whatever certificates exist.
	HTTPSAddrs []string
	// IncludeDir, when set, makes each vhost's content servers include
	// <IncludeDir>/<host>/*.conf ("*." of a wildcard host is written
	// "_wildcard_."). A glob that matches nothing is fine for nginx.
	IncludeDir string
	// CertDir holds <primary>/{fullchain,privkey}.pem; required with HTTPSAddrs.
	CertDir string
	// NginxVersion is the running nginx's version, e.g. "1.22.1". From
	// 1.25.1 HTTP/2 is enabled with "http2 on;", before with "listen ...
	// http2". "" assumes the older style, which newer versions still accept.
	NginxVersion string
	// Template is the template text; "" uses the embedded default.
	Template string
}

// Input is everything a render depends on.
type Input struct {
	// Routes must pass CheckRoutes; Render fails otherwise.
	Routes []routing.Route
	// Certs are the certificates on disk, in the order CertFor prefers them.
	Certs    []CertRef
	Settings Settings
}

// view is what the template sees: every string in it is validated.
type view struct {
	HTTPListens, TLSListens []string
	HTTP2On                 bool
	CatchAllHTTP            bool
	CatchAllTLS             bool
	RedirectPort            string
	Upstreams               []upstream
	Vhosts                  []vhost
}

type upstream struct {
	Name    string
	Servers []string
}

type vhost struct {
	Host                    string
	Upstream                string // "" when no replica is live
	Scheme                  string // http, https, grpc, grpcs
	GRPC                    bool
	Include                 string
	HTTPDefault, TLSDefault bool
	Redirect                bool // the HTTP server only redirects to HTTPS
	TLS                     bool
	CertDir, CertName       string
	CertFingerprint         string
	HSTS                    int
}

// Render produces the config for in. The same input always gives the same
// bytes: routes are sorted by host and upstream servers by address.
func Render(in Input) ([]byte, error) {
	v, err := buildView(in)
	if err != nil {
		return nil, err
	}
	text := in.Settings.Template
	if text == "" {
		text = defaultTemplate
	}
	tmpl, err := template.New("portico.conf").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	var buf bytes.Buffer
	buf.Grow(2048 + 2048*len(v.Vhosts))
	if err := tmpl.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("execute template: %w", err)
	}
	return buf.Bytes(), nil
}

func buildView(in Input) (view, error) {
	s := in.Settings
	var v view
	httpAddrs := s.HTTPAddrs
	if len(httpAddrs) == 0 {
		httpAddrs = []string{":80"}
	}
	for _, a := range httpAddrs {
		l, _, err := listenAddr(a)
		if err != nil {
			return view{}, fmt.Errorf("http %w", err)
		}
		v.HTTPListens = append(v.HTTPListens, l)
	}
	for i, a := range s.HTTPSAddrs {
		l, port, err := listenAddr(a)
		if err != nil {
			return view{}, fmt.Errorf("https %w", err)
		}
		if i == 0 && port != 443 {
			v.RedirectPort = fmt.Sprintf(":%d", port)
		}
		v.TLSListens = append(v.TLSListens, l)
	}
	if err := dupes("listen address", append(slices.Clone(v.HTTPListens), v.TLSListens...)); err != nil {
		return view{}, err
	}
	ver, ok := parseVersion(s.NginxVersion)
	if s.NginxVersion != "" && !ok {
		return view{}, fmt.Errorf("nginx version %q: not a version", s.NginxVersion)
	}
	v.HTTP2On = ok && !versionBefore(ver, 1, 25, 1)
	tls := len(v.TLSListens) > 0
	if tls {
		if ok && versionBefore(ver, 1, 19, 4) {
			return view{}, fmt.Errorf("nginx %s: TLS needs nginx 1.19.4 or later (ssl_reject_handshake)", s.NginxVersion)
		}
		if err := checkPath("certificate dir", s.CertDir); err != nil {
			return view{}, err
		}
	}
	if s.IncludeDir != "" {
		if err := checkPath("include dir", s.IncludeDir); err != nil {
			return view{}, err
		}
	}

	routes := slices.Clone(in.Routes)
	slices.SortFunc(routes, func(a, b routing.Route) int { return strings.Compare(a.Host, b.Host) })
	if _, errs := CheckRoutes(routes); len(errs) > 0 {
		return view{}, errors.Join(errs...)
	}
	names := map[string]string{}
	defaultSeen := false
	for _, r := range routes {
		h := vhost{Host: r.Host, Scheme: r.Protocol, HSTS: r.HSTS}
		if h.Scheme == "" {
			h.Scheme = routing.ProtoHTTP
		}
		h.GRPC = h.Scheme == routing.ProtoGRPC || h.Scheme == routing.ProtoGRPCS
		if s.IncludeDir != "" {
			h.Include = path.Join(s.IncludeDir, dirName(r.Host)) + "/*.conf"
		}
		if len(r.Upstreams) > 0 {
			h.Upstream = upstreamName(r.Host)
			if other, dup := names[h.Upstream]; dup {
				return view{}, fmt.Errorf("routes %q and %q: upstream name %s collides", other, r.Host, h.Upstream)
			}
			names[h.Upstream] = r.Host
			u := upstream{Name: h.Upstream}
			for _, a := range r.Upstreams {
				n, _ := upstreamAddr(a) // checked by CheckRoutes
				u.Servers = append(u.Servers, n)
			}
			slices.Sort(u.Servers)
			u.Servers = slices.Compact(u.Servers)
			v.Upstreams = append(v.Upstreams, u)
		}
		if tls && r.HTTPS != routing.HTTPSOff {
			if c, ok := CertFor(r.Host, in.Certs); ok {
				if !ValidHost(c.Primary) {
					return view{}, fmt.Errorf("route %q: certificate name %q is not a host name", r.Host, c.Primary)
				}
				h.TLS = true
				h.CertName = c.Primary
				h.CertDir = path.Join(s.CertDir, dirName(c.Primary))
				h.CertFingerprint = hexOnly(c.Fingerprint)
				switch r.HTTPS {
				case routing.HTTPSBoth:
				case routing.HTTPSAuto, "":
					h.Redirect = !c.Local
				default:
					h.Redirect = true
				}
			}
		}
		if !h.TLS {
			h.HSTS = 0 // HSTS only ever goes on TLS responses
		}
		if r.Default && !defaultSeen {
			defaultSeen = true
			h.HTTPDefault = true
			h.TLSDefault = h.TLS
		}
		v.Vhosts = append(v.Vhosts, h)
	}
	v.CatchAllHTTP = !defaultSeen
	v.CatchAllTLS = tls && !slices.ContainsFunc(v.Vhosts, func(h vhost) bool { return h.TLSDefault })
	return v, nil
}

// upstreamName derives a unique upstream name from a validated host: a
// readable part plus a hash of the exact host, so "a-b.c" and "a.b-c" or
// "a_b.c" and "a.b_c" never share a name.
func upstreamName(host string) string {
	f := fnv.New32a()
	f.Write([]byte(host))
	var b strings.Builder
	b.Grow(len(host) + 32)
	b.WriteString("portico_")
	for _, c := range []byte(host) {
		switch c {
		case '*':
			b.WriteString("_wildcard_")
		case '.':
			b.WriteByte('_')
		default:
			b.WriteByte(c)
		}
	}
	fmt.Fprintf(&b, "_%08x", f.Sum32())
	return b.String()
}

// dirName is the directory of a host's includes or certificate:
// "*.example.com" becomes "_wildcard_.example.com", so an include glob never
// matches other hosts' directories and no path holds a glob character.
func dirName(host string) string { return strings.Replace(host, "*", "_wildcard_", 1) }

func hexOnly(s string) string {
	if strings.Trim(strings.ToLower(s), "0123456789abcdef") != "" {
		return "invalid"
	}
	return strings.ToLower(s)
}

func dupes(what string, xs []string) error {
	seen := map[string]bool{}
	for _, x := range xs {
		if seen[x] {
			return fmt.Errorf("%s %s given twice", what, x)
		}
		seen[x] = true
	}
	return nil
}
