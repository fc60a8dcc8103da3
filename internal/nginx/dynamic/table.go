// Package dynamic is nginx's dynamic path: the route table and the
// certificates that Portico pushes into a running nginx's shared memory
// through a local control socket, so that a new, changed or removed route,
// a replica joining or leaving, and a new or renewed certificate are served
// without a reload (docs/nginx.md).
//
// The table is data, never nginx syntax: the Lua side (portico.lua) only
// stores and reads it. This file holds the table and its wire format, which
// is also the state file nginx loads at start; push.go talks to nginx.
package dynamic

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/portico/portico/internal/routing"
)

// Route is one vhost on the dynamic path. Every field must be validated
// before it gets here (routing.Build, nginx.CheckRoutes): Encode refuses
// the bytes that would break the line format, nothing more.
type Route struct {
	// Host is the lower-case server name, possibly "*.example.com".
	Host string
	// Scheme is how the upstream is spoken to: http, https, grpc or grpcs.
	Scheme string
	// Redirect sends plain-HTTP requests to HTTPS with a 301.
	Redirect bool
	// HSTS is Strict-Transport-Security's max-age on HTTPS responses; 0
	// sends none. HSTSIncludeSubDomains and HSTSPreload add those
	// directives.
	HSTS                               int
	HSTSIncludeSubDomains, HSTSPreload bool
	// Cert is the content id (CertID) of the certificate served for the
	// host; "" serves no TLS for it (handshakes are rejected).
	Cert string
	// Peers are the upstream addresses, "ip:port" or "[ip6]:port". None
	// answers 503 at once.
	Peers []string
	// Root is a fastcgi route's document root (routing.ValidRoot); "" for
	// every other scheme. It is the option field "root=<path>".
	Root string
	// Options are the route's per-site options (siteopts.Options.Fields),
	// written after the fixed fields as "name=value", in this order.
	Options []Option
	// Path, when set, makes this the entry of one path prefix of Host (a
	// "path" line; portico.lua stores it as "p:<host><path>"): Scheme,
	// Peers and Options are the path's; Redirect, HSTS and Cert are the
	// host entry's and should be left zero. The host entry lists its
	// paths in the option PathList (render.DynamicTable).
	Path string
}

// The options a host or path entry carries for paths (portico.lua reads
// them apart from the per-site options): a host entry's prefixes, longest
// first, space-separated (present whenever the host has paths or a root
// rewrite, possibly empty); "1" when no container serves "/"; a path's
// strip-path; the path sent upstream instead of the prefix (VIRTUAL_DEST).
const (
	OptionPathList   = "path-list"
	OptionPathNoRoot = "path-noroot"
	OptionPathStrip  = "path-strip"
	OptionPathDest   = "path-dest"
)

// Option is one per-site option on the dynamic path: Name is
// [a-z0-9-]+ and must be one that portico.lua's OPTION_CHECK knows (nginx
// refuses a table with an unknown one); Value holds no tab, newline, CR or
// NUL.
type Option struct {
	Name, Value string
}

// Table is everything the dynamic path serves, but the certificates'
// bytes, which are pushed by id.
type Table struct {
	// Routes, in any order; Encode sorts them.
	Routes []Route
	// Default is the host whose route answers unknown names ("" answers
	// 404 and rejects unknown TLS names).
	Default string
	// RedirectPort is appended to the host in HTTPS redirects (":8443"),
	// "" for 443.
	RedirectPort string
}

// Cert is a certificate as the dynamic path stores it.
type Cert struct {
	// ID is CertID(FullChain, Key).
	ID string
	// FullChain and Key are PEM; FullChainFile and KeyFile hold the same
	// bytes on disk, for the state file nginx loads at start.
	FullChain, Key         string
	FullChainFile, KeyFile string
}

// CertID is the content id of a certificate: the first 32 hex digits of
// SHA-256 over the chain, a zero byte and the key. An id never changes
// content, so nginx's parsed copies never go stale.
func CertID(fullChain, key string) string {
	h := sha256.New()
	h.Write([]byte(fullChain))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// header starts the wire format; a change of format changes it.
const header = "portico-routes 1\n"

// Encode writes t in the line format the Lua side reads:
//
//	portico-routes 1
//	version	<hex>
//	redirect_port	<:port or empty>
//	default	<host>                       (only with a default)
//	route	<host>	<scheme>	<0|1>	<hsts>	<cert id>	<peer> <peer> ...[	<name>=<value>]...
//	path	<host>	<path>	<scheme>	0	0		<peer> <peer> ...[	<name>=<value>]...
//
// A fastcgi route's document root is the option "root=<path>", written
// first (always and only with that scheme).
//
// The fields after the peers are the route's per-site options, one each,
// and the path options (OptionPathList, ...). A path line is one path
// prefix of a host that has a route line listing it.
// <hsts> is the max-age alone ("0" for none), as it always was, or, with
// includeSubDomains or preload, the whole header value in its one
// canonical form, "max-age=<n>[; includeSubDomains][; preload]".
//
// The same table always gives the same bytes; the version is a hash of
// the lines after it.
func (t Table) Encode() (body []byte, version string, err error) {
	e, err := t.EncodeTable()
	if err != nil {
		return nil, "", err
	}
	return e.Body, e.Version, nil
}

// Encoded is a table in its wire form, with each route's and path's line
// by key, for Delta.
type Encoded struct {
	// Body and Version are Encode's.
	Body    []byte
	Version string
	// lines maps "<host>" (a route line) and "<host>\t<path>" (a path
	// line) to the line, without its newline.
	lines map[string]string
	// meta are the redirect_port and default lines.
	redirectPort, def string
}

// EncodeTable is Encode, keeping each line for Delta.
func (t Table) EncodeTable() (Encoded, error) {
	routes := slices.Clone(t.Routes)
	slices.SortFunc(routes, func(a, b Route) int {
		if c := strings.Compare(a.Host, b.Host); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
	e := Encoded{lines: make(map[string]string, len(routes)), redirectPort: t.RedirectPort, def: t.Default}
	var b bytes.Buffer
	b.Grow(64 + 96*len(routes))
	if err := clean("redirect port", t.RedirectPort); err != nil {
		return Encoded{}, err
	}
	fmt.Fprintf(&b, "redirect_port\t%s\n", t.RedirectPort)
	if t.Default != "" {
		if err := clean("default", t.Default); err != nil {
			return Encoded{}, err
		}
		fmt.Fprintf(&b, "default\t%s\n", t.Default)
	}
	for i, r := range routes {
		if i > 0 && routes[i-1].Host == r.Host && routes[i-1].Path == r.Path {
			return Encoded{}, fmt.Errorf("route %q%s given twice", r.Host, r.Path)
		}
		start := b.Len()
		if err := encodeRoute(&b, r); err != nil {
			return Encoded{}, err
		}
		key := r.Host
		if r.Path != "" {
			key += "\t" + r.Path
		}
		e.lines[key] = string(b.Bytes()[start:b.Len()])
		b.WriteByte('\n')
	}
	sum := sha256.Sum256(b.Bytes())
	e.Version = hex.EncodeToString(sum[:])[:32]
	out := make([]byte, 0, len(header)+48+b.Len())
	out = append(out, header...)
	out = append(out, "version\t"+e.Version+"\n"...)
	e.Body = append(out, b.Bytes()...)
	return e, nil
}

// encodeRoute writes r's line, without its newline.
func encodeRoute(b *bytes.Buffer, r Route) error {
	if r.Path != "" && (r.Path[0] != '/' || strings.ContainsAny(r.Path, " \t\n\r\x00")) {
		return fmt.Errorf("route %q: path %q: not a path prefix", r.Host, r.Path)
	}
	for what, v := range map[string]string{"host": r.Host, "scheme": r.Scheme, "certificate id": r.Cert} {
		if err := clean(what, v); err != nil {
			return fmt.Errorf("route %q: %w", r.Host, err)
		}
	}
	if r.Host == "" {
		return fmt.Errorf("route with no host")
	}
	for _, p := range r.Peers {
		if err := clean("peer", p); err != nil || p == "" || strings.ContainsRune(p, ' ') {
			return fmt.Errorf("route %q: peer %q: not an address", r.Host, p)
		}
	}
	redirect := "0"
	if r.Redirect {
		redirect = "1"
	}
	if r.Path == "" {
		b.WriteString("route\t")
		b.WriteString(r.Host)
	} else {
		b.WriteString("path\t")
		b.WriteString(r.Host)
		b.WriteByte('\t')
		b.WriteString(r.Path)
	}
	b.WriteByte('\t')
	b.WriteString(r.Scheme)
	b.WriteByte('\t')
	b.WriteString(redirect)
	b.WriteByte('\t')
	b.WriteString(hstsField(r))
	b.WriteByte('\t')
	b.WriteString(r.Cert)
	b.WriteByte('\t')
	b.WriteString(strings.Join(r.Peers, " "))
	if (r.Root != "") != (r.Scheme == "fastcgi") {
		return fmt.Errorf("route %q: a root with scheme %s", r.Host, r.Scheme)
	}
	if r.Root != "" {
		if err := routing.ValidRoot(r.Root); err != nil {
			return fmt.Errorf("route %q: root %q: %w", r.Host, r.Root, err)
		}
		b.WriteString("\troot=")
		b.WriteString(r.Root)
	}
	for _, o := range r.Options {
		if !validOptionName(o.Name) {
			return fmt.Errorf("route %q: option name %q: not [a-z0-9-]+", r.Host, o.Name)
		}
		if err := clean("option "+o.Name, o.Value); err != nil {
			return fmt.Errorf("route %q: %w", r.Host, err)
		}
		b.WriteByte('\t')
		b.WriteString(o.Name)
		b.WriteByte('=')
		b.WriteString(o.Value)
	}
	return nil
}

// hstsField is a route's <hsts> field, built from the number and
// constants only.
func hstsField(r Route) string {
	n := strconv.Itoa(max(0, r.HSTS))
	if r.HSTS <= 0 || !r.HSTSIncludeSubDomains && !r.HSTSPreload {
		return n
	}
	s := "max-age=" + n
	if r.HSTSIncludeSubDomains {
		s += "; includeSubDomains"
	}
	if r.HSTSPreload {
		s += "; preload"
	}
	return s
}

// validOptionName: a per-site option's name in the table, [a-z0-9-]+.
func validOptionName(n string) bool {
	if n == "" || len(n) > 32 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// clean refuses the bytes that separate fields and lines.
func clean(what, v string) error {
	if strings.ContainsAny(v, "\t\n\r\x00") {
		return fmt.Errorf("%s %q: holds a tab, newline or NUL", what, v)
	}
	return nil
}

// StateFile is body followed by one line per certificate naming its
// files, which nginx reads at start (as its master's user, before workers
// start):
//
//	certfile	<id>	<fullchain path>	<key path>
func StateFile(body []byte, certs []Cert) ([]byte, error) {
	out := slices.Clip(body)
	for _, c := range certs {
		for what, v := range map[string]string{"id": c.ID, "chain file": c.FullChainFile, "key file": c.KeyFile} {
			if err := clean(what, v); err != nil {
				return nil, fmt.Errorf("certificate %s: %w", c.ID, err)
			}
		}
		out = append(out, "certfile\t"+c.ID+"\t"+c.FullChainFile+"\t"+c.KeyFile+"\n"...)
	}
	return out, nil
}

// deltaHeader starts a delta (Control.PutDelta).
const deltaHeader = "portico-delta 1\n"

// Delta is the change from the table old to the table new in the delta
// format, which portico.lua applies only to the table whose version is
// old's (else it refuses, and the whole table is pushed):
//
//	portico-delta 1
//	base	<old's version>
//	version	<new's version>
//	redirect_port	<:port or empty>
//	default	<host or empty>
//	route	...          (Encode's line of each route new or changed)
//	path	...          (the same for paths)
//	delroute	<host>   (each route gone)
//	delpath	<host>	<path>  (each path gone)
//	dropcert	<id>     (each certificate in drop: no route names it now)
//
// Lines come in key order, so the same change gives the same bytes. n is
// the number of route and path lines set or deleted: its size is the
// change's, whatever the table's.
func Delta(old, new Encoded, drop []string) (body []byte, n int) {
	var b bytes.Buffer
	b.WriteString(deltaHeader)
	b.WriteString("base\t" + old.Version + "\n")
	b.WriteString("version\t" + new.Version + "\n")
	b.WriteString("redirect_port\t" + new.redirectPort + "\n")
	b.WriteString("default\t" + new.def + "\n")
	var set, gone []string
	for k, l := range new.lines {
		if old.lines[k] != l {
			set = append(set, k)
		}
	}
	for k := range old.lines {
		if _, ok := new.lines[k]; !ok {
			gone = append(gone, k)
		}
	}
	slices.Sort(set)
	slices.Sort(gone)
	for _, k := range set {
		b.WriteString(new.lines[k])
		b.WriteByte('\n')
	}
	for _, k := range gone {
		if host, path, ok := strings.Cut(k, "\t"); ok {
			b.WriteString("delpath\t" + host + "\t" + path + "\n")
		} else {
			b.WriteString("delroute\t" + k + "\n")
		}
	}
	for _, id := range slices.Sorted(slices.Values(drop)) {
		b.WriteString("dropcert\t" + id + "\n")
	}
	return b.Bytes(), len(set) + len(gone)
}
