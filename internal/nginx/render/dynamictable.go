package render

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/portico/portico/internal/nginx/dynamic"
	"github.com/portico/portico/internal/routing"
)

// DynamicTable is the dynamic path's table for routes (checked by
// CheckRoutes) and the certificates it names, decided as Render decides
// them. certDir is where CertFiles wrote the certificates, which it
// checked (CheckCertPEM) before making refs; nginx parses each again
// before it stores it.
func DynamicTable(routes []routing.Route, refs []CertRef, st Settings, certDir string) (dynamic.Table, []dynamic.Cert, error) {
	v, err := buildView(Input{Settings: Settings{HTTPAddrs: st.HTTPAddrs, HTTPSAddrs: st.HTTPSAddrs, NginxVersion: st.NginxVersion}})
	if err != nil {
		return dynamic.Table{}, nil, err
	}
	tls := len(v.TLSListens) > 0
	t := dynamic.Table{RedirectPort: v.RedirectPort, Routes: make([]dynamic.Route, 0, len(routes))}
	byID := map[string]dynamic.Cert{}
	// By host, as Render: the first default route by host wins.
	routes = slices.Clone(routes)
	slices.SortFunc(routes, func(a, b routing.Route) int { return strings.Compare(a.Host, b.Host) })
	for _, r := range routes {
		entries, cert, err := dynamicEntries(r, refs, tls, certDir)
		if err != nil {
			return dynamic.Table{}, nil, err
		}
		if cert != nil {
			if _, ok := byID[cert.ID]; !ok {
				byID[cert.ID] = *cert
			}
		}
		if r.Default && t.Default == "" {
			t.Default = r.Host
		}
		t.Routes = append(t.Routes, entries...)
	}
	certs := make([]dynamic.Cert, 0, len(byID))
	for _, c := range byID {
		certs = append(certs, c)
	}
	slices.SortFunc(certs, func(a, b dynamic.Cert) int { return strings.Compare(a.ID, b.ID) })
	return t, certs, nil
}

// dynamicEntries is the table's entries for one route (its host entry,
// then its paths) and the certificate it names (nil for none). It depends
// on r, the certificate CertFor picks for r.Host, tls and certDir alone.
func dynamicEntries(r routing.Route, refs []CertRef, tls bool, certDir string) ([]dynamic.Route, *dynamic.Cert, error) {
	d := dynamic.Route{Host: r.Host, Scheme: r.Protocol, Root: r.Root}
	for _, f := range r.Site.Fields() {
		d.Options = append(d.Options, dynamic.Option{Name: f.Name, Value: f.Value})
	}
	if d.Scheme == "" {
		d.Scheme = routing.ProtoHTTP
	}
	for _, a := range r.Upstreams {
		n, err := upstreamAddr(a)
		if err != nil {
			return nil, nil, fmt.Errorf("route %q: %w", r.Host, err)
		}
		d.Peers = append(d.Peers, n)
	}
	slices.Sort(d.Peers)
	d.Peers = slices.Compact(d.Peers)
	var cert *dynamic.Cert
	if c, redirect, ok := routeTLS(r, refs, tls); ok {
		if !ValidHost(c.Primary) {
			return nil, nil, fmt.Errorf("route %q: certificate name %q is not a host name", r.Host, c.Primary)
		}
		id := dynamic.CertID(c.FullChain, c.Key)
		dir := filepath.Join(certDir, dirName(c.Primary))
		cert = &dynamic.Cert{ID: id, FullChain: c.FullChain, Key: c.Key,
			FullChainFile: filepath.Join(dir, "fullchain.pem"), KeyFile: filepath.Join(dir, "privkey.pem")}
		d.Cert, d.Redirect = id, redirect
		d.HSTS, d.HSTSIncludeSubDomains, d.HSTSPreload = r.HSTS.MaxAge, r.HSTS.IncludeSubDomains, r.HSTS.Preload
	}
	paths, err := dynamicPaths(r, &d)
	if err != nil {
		return nil, nil, err
	}
	return append([]dynamic.Route{d}, paths...), cert, nil
}

// dynamicPaths adds the path options to the host entry d of r and returns
// one entry per path prefix of r: a host with no path and no root rewrite
// gets nothing, so its entry is what it was before paths.
func dynamicPaths(r routing.Route, d *dynamic.Route) ([]dynamic.Route, error) {
	if len(r.Paths) == 0 && r.Dest == "" && !r.NoRoot {
		return nil, nil
	}
	list := make([]string, 0, len(r.Paths))
	out := make([]dynamic.Route, 0, len(r.Paths))
	for _, p := range r.Paths {
		list = append(list, p.Path)
		pd := dynamic.Route{Host: r.Host, Path: p.Path, Scheme: p.Protocol}
		if pd.Scheme == "" {
			pd.Scheme = routing.ProtoHTTP
		}
		var err error
		if pd.Peers, err = servers(p.Upstreams); err != nil {
			return nil, fmt.Errorf("route %q path %s: %w", r.Host, p.Path, err)
		}
		// A vhost's per-site options apply to every path (routing refuses
		// them on a path prefix): each path entry carries the root's.
		for _, f := range r.Site.Fields() {
			pd.Options = append(pd.Options, dynamic.Option{Name: f.Name, Value: f.Value})
		}
		if p.Strip {
			pd.Options = append(pd.Options, dynamic.Option{Name: dynamic.OptionPathStrip, Value: "1"})
		} else if p.Dest != "" {
			pd.Options = append(pd.Options, dynamic.Option{Name: dynamic.OptionPathDest, Value: p.Dest})
		}
		out = append(out, pd)
	}
	d.Options = append(d.Options, dynamic.Option{Name: dynamic.OptionPathList, Value: strings.Join(list, " ")})
	if r.NoRoot {
		d.Options = append(d.Options, dynamic.Option{Name: dynamic.OptionPathNoRoot, Value: "1"})
	}
	if r.Dest != "" {
		d.Options = append(d.Options, dynamic.Option{Name: dynamic.OptionPathDest, Value: r.Dest})
	}
	return out, nil
}
