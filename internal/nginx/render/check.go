package render

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/portico/portico/internal/routing"
)

// Everything rendered into the config passes one of these checks, so no
// string can end a directive, open a block or expand a variable.

// ValidHost reports whether h is a lower-case host name (optionally a
// leading "*." or a trailing ".*" wildcard, not both) that is safe to
// render as a server_name and, through dirName, a path segment: labels of
// 1-63 bytes of [a-z0-9_-], not starting or ending with '-'. It runs on
// every route of every render, so it is a loop, not a regexp.
func ValidHost(h string) bool {
	if len(h) > 253 {
		return false
	}
	if t, ok := strings.CutPrefix(h, "*."); ok {
		h = t
	} else {
		h = strings.TrimSuffix(h, ".*")
	}
	for {
		label, rest, more := strings.Cut(h, ".")
		if !validLabel(label) {
			return false
		}
		if !more {
			return true
		}
		h = rest
	}
}

func validLabel(l string) bool {
	if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// checkPath rejects a configured directory that nginx would not read as one
// plain token.
func checkPath(what, p string) error {
	if p == "" || p[0] != '/' {
		return fmt.Errorf("%s %q: not an absolute path", what, p)
	}
	if i := strings.IndexFunc(p, func(r rune) bool {
		return r <= ' ' || r == 0x7f || strings.ContainsRune(`"'\$;{}*?[]`, r)
	}); i >= 0 {
		return fmt.Errorf("%s %q: character %q is not allowed in an nginx path", what, p, p[i])
	}
	return nil
}

// listenAddr turns ":80", "0.0.0.0:80", "[::]:443" or "127.0.0.1:8080" into
// an nginx listen address. Only IP literals are accepted.
func listenAddr(a string) (string, int, error) {
	host, port, ok := strings.Cut(a, ":")
	if strings.HasPrefix(a, "[") {
		i := strings.LastIndex(a, "]:")
		if i < 0 {
			return "", 0, fmt.Errorf("listen address %q: want [ipv6]:port", a)
		}
		host, port, ok = a[1:i], a[i+2:], true
	} else if strings.Count(a, ":") != 1 {
		return "", 0, fmt.Errorf("listen address %q: want ip:port, :port or [ipv6]:port", a)
	}
	p, err := strconv.Atoi(port)
	if !ok || err != nil || p < 1 || p > 65535 || strconv.Itoa(p) != port {
		return "", 0, fmt.Errorf("listen address %q: bad port", a)
	}
	if host == "" || host == "*" {
		return "*:" + port, p, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return "", 0, fmt.Errorf("listen address %q: host must be an IP literal", a)
	}
	return netip.AddrPortFrom(ip, uint16(p)).String(), p, nil
}

// upstreamAddr normalises "ip:port" or "[ipv6]:port".
func upstreamAddr(a string) (string, error) {
	ap, err := netip.ParseAddrPort(a)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" || !ap.Addr().IsValid() {
		return "", fmt.Errorf("upstream address %q: want ip:port", a)
	}
	return ap.String(), nil
}

// CheckRoutes keeps the routes Render can safely use and returns one error
// per route it drops, naming the host. routing.Build only produces valid
// routes; this is the guard at the edge where strings become config.
func CheckRoutes(routes []routing.Route) ([]routing.Route, []error) {
	ok := make([]routing.Route, 0, len(routes))
	var errs []error
	seen := make(map[string]bool, len(routes))
	for _, r := range routes {
		if err := checkRoute(r); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[r.Host] {
			errs = append(errs, duplicateHost(r.Host))
			continue
		}
		seen[r.Host] = true
		ok = append(ok, r)
	}
	return ok, errs
}

func duplicateHost(host string) error { return fmt.Errorf("route %q: duplicate host", host) }

func checkRoute(r routing.Route) error {
	if !ValidHost(r.Host) {
		return fmt.Errorf("route %q: invalid host name", r.Host)
	}
	switch r.Protocol {
	case "", routing.ProtoHTTP, routing.ProtoHTTPS, routing.ProtoGRPC, routing.ProtoGRPCS, routing.ProtoUWSGI:
	case routing.ProtoFastCGI:
		if err := routing.ValidRoot(r.Root); err != nil {
			return fmt.Errorf("route %q: fastcgi root %q: %w", r.Host, r.Root, err)
		}
	default:
		return fmt.Errorf("route %q: unknown protocol %q", r.Host, r.Protocol)
	}
	if r.Root != "" && r.Protocol != routing.ProtoFastCGI {
		return fmt.Errorf("route %q: a root without the fastcgi protocol", r.Host)
	}
	switch r.HTTPS {
	case "", routing.HTTPSAuto, routing.HTTPSRedirect, routing.HTTPSBoth, routing.HTTPSOff:
	default:
		return fmt.Errorf("route %q: unknown https mode %q", r.Host, r.HTTPS)
	}
	if r.HSTS.MaxAge < 0 {
		return fmt.Errorf("route %q: negative hsts max-age %d", r.Host, r.HSTS.MaxAge)
	}
	for _, u := range r.Upstreams {
		if _, err := upstreamAddr(u); err != nil {
			return fmt.Errorf("route %q: %w", r.Host, err)
		}
	}
	return checkPaths(r)
}
