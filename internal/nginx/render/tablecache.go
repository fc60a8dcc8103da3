package render

import (
	"reflect"
	"slices"
	"strings"

	"github.com/portico/portico/internal/nginx/dynamic"
	"github.com/portico/portico/internal/routing"
)

// TableCache is CheckRoutes, DynamicTable and EncodeTable for a stage
// that pushes its table after every change (the dynamic path): it keeps,
// per host, the route last seen, its check result and its encoded lines,
// and works again only on the routes that differ from the last call's, so
// that what a change costs past the routing build is its own routes'
// checks and lines plus a copy of the lines (docs/scale.md). Its results
// are those of the functions it stands for (TestTableCacheEquivalent).
//
// A change of settings (listen addresses, nginx version), certificate
// directory or certificates (refs) drops every kept table entry: they
// change rarely, and a certificate may be any route's.
//
// A TableCache is not safe for concurrent use; the zero value is ready.
type TableCache struct {
	checked map[string]*checkedRoute
	built   map[string]*builtRoute
	// gen counts calls; an entry not used in the last call is dropped.
	gen uint64
	// What every built entry was made with.
	tls          bool
	redirectPort string
	certDir      string
	refs         []CertRef
}

type checkedRoute struct {
	r   routing.Route
	err error
	gen uint64
}

type builtRoute struct {
	r     routing.Route
	lines []dynamic.Line
	cert  *dynamic.Cert
	err   error // dynamicEntries'
	gen   uint64
}

// CheckRoutes is CheckRoutes(routes), checking again only the routes that
// changed since the last call.
func (c *TableCache) CheckRoutes(routes []routing.Route) ([]routing.Route, []error) {
	if c.checked == nil {
		c.checked = make(map[string]*checkedRoute, len(routes))
	}
	c.gen++
	ok := make([]routing.Route, 0, len(routes))
	var errs []error
	// Sorted by host, each once (as routing.Build gives them): no host
	// is a duplicate, and no map is needed to tell.
	var seen map[string]bool
	if !strictlyByHost(routes) {
		seen = make(map[string]bool, len(routes))
	}
	used := 0
	for _, r := range routes {
		e, hit := c.checked[r.Host]
		if !hit || !e.r.Equal(r) {
			e = &checkedRoute{r: r, err: checkRoute(r)}
			c.checked[r.Host] = e
		}
		if e.gen != c.gen {
			e.gen = c.gen
			used++
		}
		if e.err != nil {
			errs = append(errs, e.err)
			continue
		}
		if seen != nil {
			if seen[r.Host] {
				errs = append(errs, duplicateHost(r.Host))
				continue
			}
			seen[r.Host] = true
		}
		ok = append(ok, r)
	}
	if len(c.checked) > used {
		for h, e := range c.checked {
			if e.gen != c.gen {
				delete(c.checked, h)
			}
		}
	}
	return ok, errs
}

// strictlyByHost: routes sorted by host, each host once.
func strictlyByHost(routes []routing.Route) bool {
	for i := 1; i < len(routes); i++ {
		if routes[i-1].Host >= routes[i].Host {
			return false
		}
	}
	return true
}

// Table is DynamicTable(routes, refs, st, certDir) encoded
// (Table.EncodeTable), building and encoding again only the routes that
// changed since the last call.
func (c *TableCache) Table(routes []routing.Route, refs []CertRef, st Settings, certDir string) (dynamic.Encoded, []dynamic.Cert, error) {
	v, err := buildView(Input{Settings: Settings{HTTPAddrs: st.HTTPAddrs, HTTPSAddrs: st.HTTPSAddrs, NginxVersion: st.NginxVersion}})
	if err != nil {
		return dynamic.Encoded{}, nil, err
	}
	tls := len(v.TLSListens) > 0
	if c.built == nil || tls != c.tls || v.RedirectPort != c.redirectPort || certDir != c.certDir || !sameRefs(refs, c.refs) {
		c.built = make(map[string]*builtRoute, len(routes))
		c.tls, c.redirectPort, c.certDir = tls, v.RedirectPort, certDir
		c.refs = cloneRefs(refs)
	}
	byHost := func(a, b routing.Route) int { return strings.Compare(a.Host, b.Host) }
	if !slices.IsSortedFunc(routes, byHost) {
		routes = slices.Clone(routes)
		slices.SortFunc(routes, byHost)
	}
	for i := 1; i < len(routes); i++ {
		if routes[i].Host == routes[i-1].Host {
			// Not from CheckRoutes: the table fails on it, as built whole.
			return wholeTable(routes, refs, st, certDir)
		}
	}
	entries := make([]*builtRoute, len(routes))
	n, def := 0, ""
	byID := map[string]dynamic.Cert{}
	c.gen++
	used := 0
	for i, r := range routes {
		e := c.built[r.Host]
		if e == nil || !e.r.Equal(r) {
			e = &builtRoute{r: r}
			var ds []dynamic.Route
			ds, e.cert, e.err = dynamicEntries(r, refs, tls, certDir)
			if e.err == nil {
				dynamic.SortLines(ds)
				e.lines = dynamic.EncodeLines(ds)
			}
			c.built[r.Host] = e
		}
		if e.gen != c.gen {
			e.gen = c.gen
			used++
		}
		if e.err != nil {
			return dynamic.Encoded{}, nil, e.err
		}
		if e.cert != nil {
			if _, ok := byID[e.cert.ID]; !ok {
				byID[e.cert.ID] = *e.cert
			}
		}
		if r.Default && def == "" {
			def = r.Host
		}
		entries[i] = e
		n += len(e.lines)
	}
	if len(c.built) > used {
		for h, e := range c.built {
			if e.gen != c.gen {
				delete(c.built, h)
			}
		}
	}
	enc, err := dynamic.AssembleFunc(func(yield func(dynamic.Line) bool) {
		for _, e := range entries {
			for _, l := range e.lines {
				if !yield(l) {
					return
				}
			}
		}
	}, n, v.RedirectPort, def)
	if err != nil {
		return dynamic.Encoded{}, nil, err
	}
	certs := make([]dynamic.Cert, 0, len(byID))
	for _, c := range byID {
		certs = append(certs, c)
	}
	slices.SortFunc(certs, func(a, b dynamic.Cert) int { return strings.Compare(a.ID, b.ID) })
	return enc, certs, nil
}

// wholeTable is DynamicTable, encoded.
func wholeTable(routes []routing.Route, refs []CertRef, st Settings, certDir string) (dynamic.Encoded, []dynamic.Cert, error) {
	t, certs, err := DynamicTable(routes, refs, st, certDir)
	if err != nil {
		return dynamic.Encoded{}, nil, err
	}
	enc, err := t.EncodeTable()
	if err != nil {
		return dynamic.Encoded{}, nil, err
	}
	return enc, certs, nil
}

func sameRefs(a, b []CertRef) bool {
	return slices.EqualFunc(a, b, func(x, y CertRef) bool { return reflect.DeepEqual(x, y) })
}

func cloneRefs(refs []CertRef) []CertRef {
	out := make([]CertRef, len(refs))
	for i, r := range refs {
		r.Names = slices.Clone(r.Names)
		out[i] = r
	}
	return out
}
