package nginx

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/routing"
)

// maxWhyNames bounds the names one part of a reload reason lists; the rest
// are counted ("and 7 more"), so a reload of 10,000 routes logs one short
// line.
const maxWhyNames = 5

// applied is what a config in place was rendered from: its routes and the
// certificates the stage offered it.
type applied struct {
	known  bool // false until the stage applied once in this process
	routes []routing.Route
	certs  []render.CertRef
}

// why says, for the log, what changed between the config in place and the
// next one, then remembers next. The first apply of a process has nothing to
// compare with.
func (a *applied) why(routes []routing.Route, certs []render.CertRef) string {
	var w string
	if a.known {
		w = reloadReason(a.routes, routes, a.certs, certs)
	} else {
		w = fmt.Sprintf("first apply since start: %s", plural(len(routes), "route"))
	}
	*a = applied{known: true, routes: routes, certs: certs}
	return w
}

// reloadReason compares the route sets and certificates of two configs and
// names what changed, e.g. "1 route added: a.test; certificate changed:
// d.test". It is "settings or template changed" when the routes and
// certificates are the same (the rendered bytes differ for another reason).
func reloadReason(prev, next []routing.Route, prevCerts, nextCerts []render.CertRef) string {
	var added, removed, upstreams, settings, containers, paths []string
	changed := func(old, r *routing.Route) {
		switch {
		case !slices.Equal(old.Upstreams, r.Upstreams):
			upstreams = append(upstreams, r.Host)
		case old.Protocol != r.Protocol || old.HTTPS != r.HTTPS || old.HSTS != r.HSTS || old.Default != r.Default:
			settings = append(settings, r.Host)
		case old.NoRoot != r.NoRoot || old.Dest != r.Dest || !reflect.DeepEqual(old.Paths, r.Paths):
			paths = append(paths, r.Host)
		case !slices.Equal(old.Containers, r.Containers):
			containers = append(containers, r.Host)
		}
	}
	if byHost(prev) && byHost(next) {
		// The usual case (routes as routing.Build sorts them): one walk,
		// no map of the table.
		for i, j := 0, 0; i < len(prev) || j < len(next); {
			switch {
			case j == len(next) || i < len(prev) && prev[i].Host < next[j].Host:
				removed = append(removed, prev[i].Host)
				i++
			case i == len(prev) || next[j].Host < prev[i].Host:
				added = append(added, next[j].Host)
				j++
			default:
				if !prev[i].Equal(next[j]) {
					changed(&prev[i], &next[j])
				}
				i++
				j++
			}
		}
	} else {
		before := make(map[string]int, len(prev))
		for i, r := range prev {
			before[r.Host] = i
		}
		after := make(map[string]bool, len(next))
		for i := range next {
			r := &next[i]
			after[r.Host] = true
			if o, ok := before[r.Host]; !ok {
				added = append(added, r.Host)
			} else {
				changed(&prev[o], r)
			}
		}
		for _, r := range prev {
			if !after[r.Host] {
				removed = append(removed, r.Host)
			}
		}
	}
	oldCerts := make(map[string]string, len(prevCerts))
	for _, c := range prevCerts {
		oldCerts[c.Primary] = c.Fingerprint
	}
	newCerts := make(map[string]bool, len(nextCerts))
	var certAdded, certChanged, certRemoved []string
	for _, c := range nextCerts {
		newCerts[c.Primary] = true
		fp, ok := oldCerts[c.Primary]
		switch {
		case !ok:
			certAdded = append(certAdded, c.Primary)
		case fp != c.Fingerprint:
			certChanged = append(certChanged, c.Primary)
		}
	}
	for _, c := range prevCerts {
		if !newCerts[c.Primary] {
			certRemoved = append(certRemoved, c.Primary)
		}
	}
	var parts []string
	counted := func(names []string, noun, verb string) {
		if len(names) > 0 {
			parts = append(parts, fmt.Sprintf("%s %s: %s", plural(len(names), noun), verb, nameList(names)))
		}
	}
	named := func(names []string, what string) {
		if len(names) > 0 {
			parts = append(parts, fmt.Sprintf("%s: %s", what, nameList(names)))
		}
	}
	counted(added, "route", "added")
	counted(removed, "route", "removed")
	named(upstreams, "upstreams changed")
	named(settings, "route settings changed")
	named(paths, "paths changed")
	named(containers, "containers changed")
	named(certAdded, "certificate added")
	named(certChanged, "certificate changed")
	named(certRemoved, "certificate removed")
	if len(parts) == 0 {
		return "settings or template changed"
	}
	return strings.Join(parts, "; ")
}

// byHost: routes sorted by host, each host once.
func byHost(routes []routing.Route) bool {
	for i := 1; i < len(routes); i++ {
		if routes[i-1].Host >= routes[i].Host {
			return false
		}
	}
	return true
}

// nameList lists names sorted, at most maxWhyNames of them.
func nameList(names []string) string {
	names = slices.Clone(names)
	slices.Sort(names)
	if len(names) <= maxWhyNames {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:maxWhyNames], ", "), len(names)-maxWhyNames)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
