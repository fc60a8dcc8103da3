package render

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/siteopts"
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
	// IncludeDir, when set, makes each vhost's server include
	// <IncludeDir>/<host>/*.conf ("*." of a wildcard host is written
	// "_wildcard_."). A glob that matches nothing is fine for nginx.
	IncludeDir string
	// NginxVersion is the running nginx's version, e.g. "1.22.1". From
	// 1.25.1 HTTP/2 is enabled with "http2 on;", before with "listen ...
	// http2". "" assumes the older style, which newer versions still accept.
	NginxVersion string
	// Template is the template text; "" uses the embedded default.
	Template string
	// TrustedProxies are the networks whose X-Forwarded-For nginx believes
	// (realip module). Empty: every upstream sees the connection's address
	// in X-Forwarded-For and X-Real-IP, never a client-supplied one. See
	// ParseTrustedProxies.
	TrustedProxies []netip.Prefix
	// MaxRequestsPerClient caps the requests one client address has in
	// progress at once, over every server that serves clients (nginx
	// limit_conn; the address is realip's with TrustedProxies); the next
	// gets 429. 0 renders no limit. See DefaultMaxRequestsPerClient.
	MaxRequestsPerClient int
	// AuthDir is the directory of the htpasswd copies nginx's workers read
	// (portico.auth-file names a file in it); "" refuses any route with
	// portico.auth-file.
	AuthDir string
	// Dynamic, when set, renders the dynamic path instead of one server
	// per vhost (dynamicconf.go); the input's routes must then be empty.
	Dynamic *DynamicPaths
	// ACMEDir (static path), when set, is the directory of pending ACME
	// http-01 challenges, <ACMEDir>/<domain>/<token> holding the key
	// authorization: every server answers them before anything else
	// (docs/acme.md). The dynamic path gets them pushed instead.
	ACMEDir string
	// HTTP3 serves every HTTPS server over QUIC too (listen ... quic on the
	// HTTPS addresses, UDP) and advertises it with Alt-Svc; nginx must be
	// built with http_v3_module (see nginx.DecideHTTP3). Without HTTPS
	// addresses it renders nothing.
	HTTP3 bool
	// Traffic, when set, counts every request per site in nginx (package
	// traffic; docs/metrics.md). On the dynamic path its paths are the
	// dynamic path's; on the static path nginx must load the Lua module.
	Traffic *TrafficPaths
	// AccessLog, when set, writes one JSON line per request
	// (docs/access-log.md).
	AccessLog *AccessLog
}

// Input is everything a render depends on.
type Input struct {
	// Routes must pass CheckRoutes; Render fails otherwise.
	Routes []routing.Route
	// Certs are the usable certificates, in the order CertFor prefers them.
	Certs    []CertRef
	Settings Settings
}

// view is what the template sees: every string in it is validated.
// hstsValue is one $portico_hsts_<Key> map: Header on HTTPS, none on HTTP.
type hstsValue struct{ Key, Header string }

// hstsKey names h's map: the max-age, then "_i" for includeSubDomains and
// "_p" for preload ("600", "600_ip"); "" when h is off. Digits, "_" and
// letters only: safe in an nginx variable name.
func hstsKey(h routing.HSTS) string {
	if !h.On() {
		return ""
	}
	k := strconv.Itoa(h.MaxAge)
	if h.IncludeSubDomains || h.Preload {
		k += "_"
	}
	if h.IncludeSubDomains {
		k += "i"
	}
	if h.Preload {
		k += "p"
	}
	return k
}

type view struct {
	*shared
	SSL          *sslView // nil when no vhost serves TLS
	CatchAllHTTP bool
	CatchAllTLS  bool
	HSTSValues   []hstsValue
	Vhosts       []vhost
	// VhostBlocks is where every vhost's "vhost" template output goes, in
	// order (Render splices them in).
	VhostBlocks string
	Dynamic     *dynamicView
	// Site are the http-level maps the per-site options need (siteopts.go).
	Site siteView
	// RateZones are the limit_req zones of the vhosts' portico.rate.
	RateZones []rateZone
}

// shared is what every server block needs; vhosts point to it so that the
// "vhost" template can be executed on a vhost alone.
type shared struct {
	HTTPListens, TLSListens []string
	HTTP2On                 bool
	// HTTP3 adds a QUIC listen beside each TLS one, "http3 on" and the
	// Alt-Svc header (Settings.HTTP3, with TLS listens).
	HTTP3        bool
	RedirectPort string
	// SSLCertVars and SSLKeyVars are the variables the PEM is split into
	// ("$portico_ssl_cert_0$portico_ssl_cert_1"); "" when no vhost serves TLS.
	SSLCertVars, SSLKeyVars string
	// TrustedProxies are canonical CIDRs ("10.0.0.0/8") for set_real_ip_from
	// and the trusted-peer geo; empty without --trusted-proxies.
	TrustedProxies []string
	// XForwardedFor is the X-Forwarded-For value: "$remote_addr", or the
	// trusted-chain variable with TrustedProxies (see realip.go).
	XForwardedFor string
	// MaxRequestsPerClient is Settings.MaxRequestsPerClient; 0: no limit.
	MaxRequestsPerClient int
	// ACMEDir is Settings.ACMEDir on the static path, else "".
	ACMEDir string
	// AuthDir is Settings.AuthDir.
	AuthDir string
	// Traffic and AccessLog are nil when off (traffic.go).
	Traffic   *trafficView
	AccessLog *accessLogView
	// DynamicPath says the servers are the dynamic path's.
	DynamicPath bool
}

// sslView selects certificates by SNI (see the template's maps).
type sslView struct {
	Default string     // map value for an unknown name: "" or a certificate key
	SNI     []mapEntry // vhost -> certificate key
	Parts   []mapPart  // certificate key -> a piece of its PEM

	certVars, keyVars string
}

type mapEntry struct{ Key, Value string }

type mapPart struct {
	Var     string
	Entries []mapEntry
}

type vhost struct {
	sh          *shared
	Host        string
	Upstream    string   // upstream name; "" when no replica is live
	Servers     []string // the upstream's "ip:port" servers, sorted
	Scheme      string   // http, https, grpc, grpcs
	GRPC        bool
	UpstreamTLS bool // https or grpcs
	// FastCGI and UWSGI speak those protocols to the upstream; Root is
	// the FastCGI document root (checked by CheckRoutes).
	FastCGI, UWSGI          bool
	Root                    string
	Include                 string
	HTTPDefault, TLSDefault bool
	Redirect                bool // plain HTTP requests are redirected to HTTPS
	TLS                     bool
	CertName                string
	CertFingerprint         string
	HSTS                    string // the key of the $portico_hsts_<key> map, hstsKey; "" sends none
	HSTSHeader              string // the header value the map sends over HTTPS
	XForwardedFor           string // the shared value; a field is cheaper for text/template than a method
	// Site are the route's per-site options (package siteopts), which the
	// template's server and location blocks render.
	Site siteopts.Options
	// Paths are the vhost's other path prefixes, longest first, each its
	// own location and upstream (paths.go); NoRoot answers 404 for the
	// rest; Rewrite is the root location's rewrite (VIRTUAL_DEST), "" for
	// none.
	Paths   []pathView
	NoRoot  bool
	Rewrite string
}

// The shared settings, as methods: promoted fields of an embedded struct
// cost text/template an allocating search on every access.

func (h vhost) HTTPListens() []string { return h.sh.HTTPListens }
func (h vhost) TLSListens() []string  { return h.sh.TLSListens }
func (h vhost) HTTP2On() bool         { return h.sh.HTTP2On }
func (h vhost) HTTP3() bool           { return h.sh.HTTP3 }
func (h vhost) RedirectPort() string  { return h.sh.RedirectPort }
func (h vhost) SSLCertVars() string   { return h.sh.SSLCertVars }
func (h vhost) SSLKeyVars() string    { return h.sh.SSLKeyVars }
func (h vhost) ACMEDir() string       { return h.sh.ACMEDir }
func (h vhost) MaxRequestsPerClient() int {
	return h.sh.MaxRequestsPerClient
}

// DefaultMaxRequestsPerClient is `--max-requests-per-client`'s default
// (docs/nginx.md): far above what an office behind one NAT address has in
// progress, and under half of one worker's 8,192 connections even when
// every request also holds an upstream connection.
const DefaultMaxRequestsPerClient = 2000

// CheckMaxRequestsPerClient accepts 0 (no limit) to 65535, the most
// nginx's limit_conn takes.
func CheckMaxRequestsPerClient(n int) error {
	if n < 0 || n > 65535 {
		return fmt.Errorf("%d requests in progress per client address: want 0 (no limit) to 65535", n)
	}
	return nil
}

// Render produces the config for in. The same input always gives the same
// bytes: routes are sorted by host and upstream servers by address. When
// the template defines "vhost", it is executed once per vhost, spread over
// the CPUs, and the blocks are spliced in where the main template prints
// .VhostBlocks.
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
	var blocks [][]byte
	size := 0
	if tmpl.Lookup("vhost") != nil {
		if blocks, size, err = vhostBlocks(tmpl, v.Vhosts); err != nil {
			return nil, err
		}
		v.VhostBlocks = blocksMark
	}
	var buf bytes.Buffer
	buf.Grow(4096 + 2048*len(v.HSTSValues))
	if v.SSL != nil {
		for _, p := range v.SSL.Parts {
			for _, e := range p.Entries {
				buf.Grow(len(e.Key) + len(e.Value) + 16)
			}
		}
	}
	if err := tmpl.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("execute template: %w", err)
	}
	if blocks == nil {
		return buf.Bytes(), nil
	}
	// Splice the blocks in where the template printed VhostBlocks: cheaper
	// than passing megabytes through the template as one string.
	parts := bytes.Split(buf.Bytes(), []byte(blocksMark))
	out := make([]byte, 0, buf.Len()+(len(parts)-1)*(size-len(blocksMark)))
	for i, p := range parts {
		if i > 0 {
			for _, b := range blocks {
				out = append(out, b...)
			}
		}
		out = append(out, p...)
	}
	return out, nil
}

// blocksMark stands for the vhost blocks in the main template's output. A
// NUL can come from no validated field.
const blocksMark = "\x00portico-vhost-blocks\x00"

// vhostBlocks executes "vhost" for every vhost, each CPU taking a
// contiguous share, and returns the blocks in order and their total size.
func vhostBlocks(tmpl *template.Template, vhosts []vhost) ([][]byte, int, error) {
	workers := max(1, min(runtime.GOMAXPROCS(0), len(vhosts)/256))
	blocks := make([][]byte, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			share := vhosts[w*len(vhosts)/workers : (w+1)*len(vhosts)/workers]
			var buf bytes.Buffer
			buf.Grow(1280 * len(share)) // a vhost's block is about 1.2 KB
			for _, h := range share {
				if err := tmpl.ExecuteTemplate(&buf, "vhost", h); err != nil {
					errs[w] = fmt.Errorf("execute template for %q: %w", h.Host, err)
					return
				}
			}
			blocks[w] = buf.Bytes()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, 0, err
	}
	size := 0
	for _, b := range blocks {
		size += len(b)
	}
	return blocks, size, nil
}

func buildView(in Input) (view, error) {
	s := in.Settings
	v := view{shared: &shared{}}
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
	if tls && ok && versionBefore(ver, 1, 19, 4) {
		return view{}, fmt.Errorf("nginx %s: TLS needs nginx 1.19.4 or later (ssl_reject_handshake)", s.NginxVersion)
	}
	if s.HTTP3 && tls {
		if !ok || versionBefore(ver, 1, 25, 0) {
			return view{}, fmt.Errorf("nginx %q: HTTP/3 needs nginx 1.25.0 or later, built with http_v3_module", s.NginxVersion)
		}
		v.HTTP3 = true
	}
	if s.IncludeDir != "" {
		if err := checkPath("include dir", s.IncludeDir); err != nil {
			return view{}, err
		}
	}
	if s.AuthDir != "" {
		if err := checkPath("auth dir", s.AuthDir); err != nil {
			return view{}, err
		}
		v.AuthDir = s.AuthDir
	}
	trusted, err := trustedView(s.TrustedProxies)
	if err != nil {
		return view{}, err
	}
	v.TrustedProxies, v.XForwardedFor = trusted, xffPlain
	if len(trusted) > 0 {
		v.XForwardedFor = xffTrusted
	}
	if err := CheckMaxRequestsPerClient(s.MaxRequestsPerClient); err != nil {
		return view{}, err
	}
	v.MaxRequestsPerClient = s.MaxRequestsPerClient
	if s.ACMEDir != "" && s.Dynamic == nil {
		if err := checkPath("acme dir", s.ACMEDir); err != nil {
			return view{}, err
		}
		v.ACMEDir = s.ACMEDir
	}
	if err := v.trafficSettings(s); err != nil {
		return view{}, err
	}
	v.DynamicPath = s.Dynamic != nil
	if s.Dynamic != nil {
		if len(in.Routes) > 0 {
			return view{}, errors.New("dynamic path: routes are pushed, not rendered")
		}
		if v.Dynamic, err = newDynamicView(*s.Dynamic); err != nil {
			return view{}, err
		}
	}

	routes := slices.Clone(in.Routes)
	slices.SortFunc(routes, func(a, b routing.Route) int { return strings.Compare(a.Host, b.Host) })
	if _, errs := CheckRoutes(routes); len(errs) > 0 {
		return view{}, errors.Join(errs...)
	}
	names := make(map[string]string, len(routes))
	defaultSeen := false
	certs := &certSet{}
	hsts := map[string]string{} // key -> header
	v.Vhosts = make([]vhost, 0, len(routes))
	for _, r := range routes {
		h := vhost{sh: v.shared, Host: r.Host, Scheme: r.Protocol, HSTS: hstsKey(r.HSTS), XForwardedFor: v.XForwardedFor, Site: r.Site}
		if h.Scheme == "" {
			h.Scheme = routing.ProtoHTTP
		}
		h.GRPC = h.Scheme == routing.ProtoGRPC || h.Scheme == routing.ProtoGRPCS
		h.UpstreamTLS = h.Scheme == routing.ProtoHTTPS || h.Scheme == routing.ProtoGRPCS
		h.FastCGI, h.UWSGI, h.Root = h.Scheme == routing.ProtoFastCGI, h.Scheme == routing.ProtoUWSGI, r.Root
		if s.IncludeDir != "" {
			h.Include = path.Join(s.IncludeDir, dirName(r.Host)) + "/*.conf"
		}
		if len(r.Upstreams) > 0 {
			h.Upstream = upstreamName(r.Host)
			if other, dup := names[h.Upstream]; dup {
				return view{}, fmt.Errorf("routes %q and %q: upstream name %s collides", other, r.Host, h.Upstream)
			}
			names[h.Upstream] = r.Host
			servers := make([]string, 0, len(r.Upstreams))
			for _, a := range r.Upstreams {
				n, _ := upstreamAddr(a) // checked by CheckRoutes
				servers = append(servers, n)
			}
			slices.Sort(servers)
			h.Servers = slices.Compact(servers)
		}
		h.NoRoot, h.Rewrite = r.NoRoot, rewriteArgs("/", false, r.Dest)
		if h.Paths, err = pathViews(r, h, names); err != nil {
			return view{}, err
		}
		if c, redirect, ok := routeTLS(r, in.Certs, tls); ok {
			key, err := certs.add(c)
			if err != nil {
				return view{}, fmt.Errorf("route %q: %w", r.Host, err)
			}
			certs.sni = append(certs.sni, mapEntry{Key: mapKey(r.Host), Value: key})
			h.TLS = true
			h.CertName = c.Primary
			h.CertFingerprint = hexOnly(c.Fingerprint)
			h.Redirect = redirect
		}
		if !h.TLS {
			h.HSTS = "" // HSTS only ever goes on TLS responses
		}
		if h.HSTS != "" {
			h.HSTSHeader = r.HSTS.Header()
			hsts[h.HSTS] = h.HSTSHeader
		}
		if r.Default && !defaultSeen {
			defaultSeen = true
			h.HTTPDefault = true
			h.TLSDefault = h.TLS
			if h.TLS {
				certs.def = certs.sni[len(certs.sni)-1].Value
			}
		}
		if err := checkAccess(h); err != nil {
			return view{}, err
		}
		v.Vhosts = append(v.Vhosts, h)
	}
	v.RateZones = rateZones(v.Vhosts)
	v.SSL = certs.view()
	if v.SSL != nil {
		v.SSLCertVars, v.SSLKeyVars = v.SSL.certVars, v.SSL.keyVars
	}
	for k, h := range hsts {
		v.HSTSValues = append(v.HSTSValues, hstsValue{Key: k, Header: h})
	}
	slices.SortFunc(v.HSTSValues, func(a, b hstsValue) int { return strings.Compare(a.Key, b.Key) })
	v.Site = newSiteView(v.Vhosts)
	v.CatchAllHTTP = !defaultSeen
	v.CatchAllTLS = tls && !slices.ContainsFunc(v.Vhosts, func(h vhost) bool { return h.TLSDefault })
	return v, nil
}

// routeTLS says whether r is served over TLS, with which certificate,
// and whether its plain-HTTP requests are redirected: both paths, static
// and dynamic, decide it here.
func routeTLS(r routing.Route, certs []CertRef, tls bool) (CertRef, bool, bool) {
	if !tls || r.HTTPS == routing.HTTPSOff {
		return CertRef{}, false, false
	}
	c, ok := CertFor(r.Host, certs)
	if !ok {
		return CertRef{}, false, false
	}
	switch r.HTTPS {
	case routing.HTTPSBoth:
		return c, false, true
	case routing.HTTPSAuto, "":
		return c, !c.Local, true
	default:
		return c, true, true
	}
}

// pemPart is how many PEM bytes go in one nginx string: nginx refuses a
// token over 4 KB, and each newline is written as two bytes.
const pemPart = 3000

// certSet collects the certificates a render uses and gives each a map key.
type certSet struct {
	keys  map[string]string // primary -> key
	certs []CertRef         // in the order first used
	sni   []mapEntry
	def   string
}

func (c *certSet) add(ref CertRef) (string, error) {
	if k, ok := c.keys[ref.Primary]; ok {
		return k, nil
	}
	if !ValidHost(ref.Primary) {
		return "", fmt.Errorf("certificate name %q is not a host name", ref.Primary)
	}
	if err := CheckCertPEM(ref.FullChain, ref.Key); err != nil {
		return "", fmt.Errorf("certificate %q: %w", ref.Primary, err)
	}
	if c.keys == nil {
		c.keys = map[string]string{}
	}
	k := dirName(ref.Primary)
	c.keys[ref.Primary] = k
	c.certs = append(c.certs, ref)
	return k, nil
}

func (c *certSet) view() *sslView {
	if len(c.certs) == 0 {
		return nil
	}
	v := &sslView{Default: `""`, SNI: c.sni}
	if c.def != "" {
		v.Default = c.def
	}
	slices.SortFunc(c.certs, func(a, b CertRef) int { return strings.Compare(a.Primary, b.Primary) })
	var certParts, keyParts []mapPart
	for _, ref := range c.certs {
		k := c.keys[ref.Primary]
		certParts = addParts(certParts, "portico_ssl_cert_", k, ref.FullChain)
		keyParts = addParts(keyParts, "portico_ssl_key_", k, ref.Key)
	}
	for _, p := range certParts {
		v.certVars += "$" + p.Var
	}
	for _, p := range keyParts {
		v.keyVars += "$" + p.Var
	}
	v.Parts = append(certParts, keyParts...)
	return v
}

// addParts splits pem into pemPart pieces, the i-th going into parts[i].
func addParts(parts []mapPart, prefix, key, pem string) []mapPart {
	for i := 0; len(pem) > 0; i++ {
		n := min(pemPart, len(pem))
		if i == len(parts) {
			parts = append(parts, mapPart{Var: fmt.Sprint(prefix, i)})
		}
		parts[i].Entries = append(parts[i].Entries, mapEntry{Key: mapKey(key), Value: strings.ReplaceAll(pem[:n], "\n", `\n`)})
		pem = pem[n:]
	}
	return parts
}

// pemByte reports whether c is allowed in PEM text written inside a quoted
// nginx string (CheckCertPEM).
func pemByte(c rune) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.ContainsRune("+/=- \n", c)
}

// mapKey writes a validated host as an nginx map key: the names of map's
// own parameters are escaped with a backslash.
func mapKey(h string) string {
	switch h {
	case "default", "hostnames", "include", "volatile":
		return `\` + h
	}
	return h
}

// upstreamName derives a unique upstream name from a validated host: "u",
// a hash of the exact host, then a readable part, so "a-b.c" and "a.b-c" or
// "a_b.c" and "a.b_c" never share a name. The hash comes first because nginx
// finds an upstream by comparing its name with every other upstream's, for
// each upstream block and each proxy_pass (quadratic in the route count):
// names that differ early make each comparison short. With 10,000 routes
// this cut `nginx -t` from 4.3 s to 2.6 s.
// FastCGIRoot is the document root's variable in a vhost's FastCGI
// parameters: its root directive's.
func (vhost) FastCGIRoot() string { return "$document_root" }

func upstreamName(host string) string {
	f := fnv.New32a()
	f.Write([]byte(host))
	var b strings.Builder
	b.Grow(len(host) + 32)
	fmt.Fprintf(&b, "u%08x_", f.Sum32())
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
