package render

import (
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/portico/portico/internal/pathprefix"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/siteopts"
)

// pathView is one path prefix of a vhost on the static path: its own
// location and upstream. Its fields that the "proxyto" template reads have
// the vhost's names, so one template proxies the root and every path.
type pathView struct {
	Host          string
	Path          string   // the location's prefix, validated by pathprefix.Parse
	Rewrite       string   // `"<regex>" "<replacement>"` for a rewrite ... break; "" for none
	Upstream      string   // upstream name; "" when no replica is live
	Servers       []string // the upstream's servers, sorted
	Scheme        string
	GRPC          bool
	UpstreamTLS   bool
	XForwardedFor string
	// Site are the vhost's per-site options (routing refuses them on a
	// path prefix): they apply to every path.
	Site siteopts.Options
	// FastCGI and UWSGI are always false and Root "": a path entry is never
	// fastcgi or uwsgi (routing refuses it); the fields let it share the
	// "proxyto" template with the vhost's root path.
	FastCGI, UWSGI bool
	Root           string
}

// rewriteArgs is a rewrite directive's arguments that send upstream what
// pathprefix.Upstream says for prefix, strip and dest: "" when the path is
// sent unchanged. prefix and dest passed pathprefix's checks, so they hold
// no quote, "$", "\" or space; the regex characters among theirs are quoted.
func rewriteArgs(prefix string, strip bool, dest string) string {
	switch {
	case strip && prefix != pathprefix.Root:
		return fmt.Sprintf(`"^%s/?(.*)$" /$1`, pathprefix.RegexQuote(prefix))
	case dest != "":
		return fmt.Sprintf(`"^%s(.*)$" "%s$1"`, pathprefix.RegexQuote(prefix), dest)
	}
	return ""
}

// pathUpstreamName is the upstream of one path of host: the host's name
// and a hash of the path (an upstream name holds no "/").
func pathUpstreamName(host, path string) string {
	f := fnv.New32a()
	f.Write([]byte(path))
	return fmt.Sprintf("%s_p%08x", upstreamName(host), f.Sum32())
}

// pathViews builds the static path's locations for r's paths; names holds
// the upstream names taken so far (name -> what took it).
func pathViews(r routing.Route, h vhost, names map[string]string) ([]pathView, error) {
	out := make([]pathView, 0, len(r.Paths))
	for _, p := range r.Paths {
		pv := pathView{Host: r.Host, Path: p.Path, Scheme: p.Protocol, XForwardedFor: h.XForwardedFor, Site: r.Site, // the vhost's, as on the dynamic path
			Rewrite: rewriteArgs(p.Path, p.Strip, p.Dest)}
		if pv.Scheme == "" {
			pv.Scheme = routing.ProtoHTTP
		}
		pv.GRPC = pv.Scheme == routing.ProtoGRPC || pv.Scheme == routing.ProtoGRPCS
		pv.UpstreamTLS = pv.Scheme == routing.ProtoHTTPS || pv.Scheme == routing.ProtoGRPCS
		if len(p.Upstreams) > 0 {
			pv.Upstream = pathUpstreamName(r.Host, p.Path)
			if other, dup := names[pv.Upstream]; dup {
				return nil, fmt.Errorf("route %q path %s: upstream name %s collides with %s", r.Host, p.Path, pv.Upstream, other)
			}
			names[pv.Upstream] = r.Host + p.Path
			var err error
			if pv.Servers, err = servers(p.Upstreams); err != nil {
				return nil, fmt.Errorf("route %q path %s: %w", r.Host, p.Path, err)
			}
		}
		out = append(out, pv)
	}
	return out, nil
}

// checkPaths is CheckRoutes for a route's paths and its root rewrite.
func checkPaths(r routing.Route) error {
	if _, err := pathprefix.ParseDest(r.Dest); err != nil {
		return fmt.Errorf("route %q: %w", r.Host, err)
	}
	if len(r.Paths) > pathprefix.MaxPerHost {
		return fmt.Errorf("route %q: %d paths, over the limit of %d", r.Host, len(r.Paths), pathprefix.MaxPerHost)
	}
	seen := make(map[string]bool, len(r.Paths))
	for _, p := range r.Paths {
		if _, err := pathprefix.Parse(p.Path); err != nil || p.Path == pathprefix.Root {
			return fmt.Errorf("route %q: path %q: not a path prefix", r.Host, p.Path)
		}
		if seen[p.Path] {
			return fmt.Errorf("route %q: path %s given twice", r.Host, p.Path)
		}
		seen[p.Path] = true
		if _, err := pathprefix.ParseDest(p.Dest); err != nil {
			return fmt.Errorf("route %q path %s: %w", r.Host, p.Path, err)
		}
		switch p.Protocol {
		case "", routing.ProtoHTTP, routing.ProtoHTTPS, routing.ProtoGRPC, routing.ProtoGRPCS:
		default:
			return fmt.Errorf("route %q path %s: unknown protocol %q", r.Host, p.Path, p.Protocol)
		}
		for _, u := range p.Upstreams {
			if _, err := upstreamAddr(u); err != nil {
				return fmt.Errorf("route %q path %s: %w", r.Host, p.Path, err)
			}
		}
	}
	return nil
}

// servers normalises, sorts and dedupes upstream addresses.
func servers(ups []string) ([]string, error) {
	out := make([]string, 0, len(ups))
	for _, a := range ups {
		n, err := upstreamAddr(a)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
