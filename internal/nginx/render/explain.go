package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/template"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// What `portico explain` needs from the renderer, as the renderer itself
// decides it: the certificates the stage would accept, one vhost's server
// block and settings, and per-route digests the stage records in its status.

// VhostView is one vhost as Render sees it.
type VhostView struct {
	Host string
	// Upstream is the upstream block's name and Servers its servers; ""
	// and nil when no replica is live (nginx answers 503).
	Upstream string
	Servers  []string
	// TLS is true when the vhost is served over HTTPS, with certificate
	// CertName; Redirect when plain HTTP is redirected to HTTPS.
	TLS, Redirect bool
	CertName      string
	HSTS          string // the header value sent over HTTPS; "" is none
	HTTPDefault   bool
	// Block is the vhost's server block (with its upstream), as the
	// template's "vhost" definition renders it; "" when the template has
	// none.
	Block string
}

// RenderVhost renders in (which must hold the route for host) and returns
// that vhost's view and server block, from the same view and template Render
// uses. It fails when Render would.
func RenderVhost(in Input, host string) (VhostView, error) {
	v, err := buildView(in)
	if err != nil {
		return VhostView{}, err
	}
	i := slices.IndexFunc(v.Vhosts, func(h vhost) bool { return h.Host == host })
	if i < 0 {
		return VhostView{}, fmt.Errorf("no route %q in the render", host)
	}
	h := v.Vhosts[i]
	out := VhostView{Host: h.Host, Upstream: h.Upstream, Servers: slices.Clone(h.Servers), TLS: h.TLS, Redirect: h.Redirect,
		CertName: h.CertName, HSTS: h.HSTSHeader, HTTPDefault: h.HTTPDefault}
	text := in.Settings.Template
	if text == "" {
		text = defaultTemplate
	}
	tmpl, err := template.New("portico.conf").Option("missingkey=error").Parse(text)
	if err != nil {
		return VhostView{}, fmt.Errorf("parse template: %w", err)
	}
	if tmpl.Lookup("vhost") == nil {
		return out, nil
	}
	var b strings.Builder
	if err := tmpl.ExecuteTemplate(&b, "vhost", h); err != nil {
		return VhostView{}, fmt.Errorf("execute template for %q: %w", host, err)
	}
	out.Block = strings.TrimLeft(b.String(), "\n")
	return out, nil
}

// UsableCerts returns the bundles the stage would serve, sorted by primary
// (the order CertFor sees them in), and the error of each bundle it would
// reject, by key: the checks of CertFiles.Sync, without writing anything.
func UsableCerts(bundles map[string]store.CertBundle) ([]CertRef, map[string]error) {
	var refs []CertRef
	rejected := map[string]error{}
	dirs := make(map[string]string, len(bundles))
	for _, key := range sortedKeys(bundles) {
		b := bundles[key]
		if store.Last(key) != b.Primary {
			rejected[key] = fmt.Errorf("key %q: bundle names certificate %q", key, b.Primary)
			continue
		}
		if other, dup := dirs[dirName(b.Primary)]; dup {
			rejected[key] = fmt.Errorf("key %q: certificate %q: same directory as certificate %q", key, b.Primary, other)
			continue
		}
		dirs[dirName(b.Primary)] = b.Primary
		files, fp, err := bundleContents(b)
		if err != nil {
			rejected[key] = fmt.Errorf("key %q: %w", key, err)
			continue
		}
		refs = append(refs, CertRef{Primary: b.Primary, Names: slices.Clone(b.Names), Fingerprint: fp, Local: b.Issuer == store.IssuerLocal,
			FullChain: string(files["fullchain.pem"]), Key: string(files["privkey.pem"])})
	}
	return refs, rejected
}

// MaxStatusRoutes bounds the routes whose digests a stage records in its
// status: past it the status record would grow past what is reasonable to
// rewrite on every apply, and RouteDigests returns nil.
const MaxStatusRoutes = 1000

// RouteDigest identifies what of a route nginx serves (host, protocol,
// HTTPS mode, HSTS, default, upstreams; not the container names): 16 hex
// digits of its SHA-256.
func RouteDigest(r routing.Route) string {
	r.Containers = nil
	b, _ := json.Marshal(r) // a Route always encodes
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// RouteDigests maps each applied route's host to its RouteDigest; nil when
// there are more than MaxStatusRoutes routes.
func RouteDigests(routes []routing.Route) map[string]string {
	if len(routes) > MaxStatusRoutes {
		return nil
	}
	m := make(map[string]string, len(routes))
	for _, r := range routes {
		m[r.Host] = RouteDigest(r)
	}
	return m
}
