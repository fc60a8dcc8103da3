package routing

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/portico/portico/internal/store"
)

// Incremental is Build for a stage that builds again after every change
// (the nginx stage's dynamic path): it keeps each record's parse (as Memo)
// and, per name (a vhost or a redirect-from name), the records that claim
// it and the route and problems their claims gave, and after a change it
// works again only on the names the changed records claimed before or
// claim now, plus the redirect-from names of the services whose first
// vhost is one of those (their redirect depends on that claim). Every
// other name keeps its route: its claimants, their order and the claims
// before theirs are unchanged (first claimant wins, claim order is by
// record). The default server and the problems are gathered again from
// what is kept.
//
// Its Result is Build's (TestIncrementalEquivalent), except Services,
// which it leaves nil. Records are told apart by (Host, ID) and their
// ModRevision: a record of the same ModRevision is taken to be the same
// (as the store's mirror guarantees); one of ModRevision 0, one whose
// parse had an error and one whose address has become the host's own are
// parsed again every time (as Memo). Input with two records of one
// (Host, ID) is built whole, and the next build starts afresh.
//
// An Incremental is for one Options and is not safe for concurrent use.
// The routes it returns share their slices with what it keeps: callers
// must not modify them.
type Incremental struct {
	memo  Memo // for nowLocal
	recs  map[memoKey]*incRec
	names map[string]*incName
	// hosts are the names with a route, sorted.
	hosts []string
	gen   uint64
	// noted are the records with problems or a default service, and
	// probNames the names with problems: what every build gathers again.
	noted     map[memoKey]bool
	probNames map[string]bool
}

type incRec struct {
	c       store.Container
	rev     int64
	svc     *Service // nil: not routed (rejected, an error, no vhost)
	probs   []Problem
	reparse bool
	gen     uint64
	// addr is svc's address, parsed once, for nowLocal.
	addr netip.Addr
}

type incName struct {
	claimants map[memoKey]bool
	route     *Route // nil: no claim on it was made
	probs     []Problem
	rejected  map[memoKey]bool
}

// NewIncremental returns an empty Incremental for opts.
func NewIncremental(opts Options) *Incremental {
	return &Incremental{memo: Memo{opts: opts}}
}

// claimedNames are the names svc claims: its vhosts, then its
// redirect-from names.
func claimedNames(svc *Service) []string {
	if svc == nil {
		return nil
	}
	return append(slices.Clip(svc.Hosts), svc.Site.Redirect.From...)
}

// Build is Build(cs, opts), Services left out, working again only on what
// changed since the last call.
func (m *Incremental) Build(cs []store.Container) Result {
	if m.recs == nil {
		m.recs, m.names, m.hosts = map[memoKey]*incRec{}, map[string]*incName{}, nil
		m.noted, m.probNames = map[memoKey]bool{}, map[string]bool{}
	}
	m.gen++
	type change struct {
		k        memoKey
		old, new *incRec
	}
	var changes []change
	for i := range cs {
		c := &cs[i]
		k := memoKey{c.Host, c.ID}
		r := m.recs[k]
		if r != nil && r.gen == m.gen {
			// A second record of one (Host, ID): Build decides which
			// counts. Start afresh next time.
			m.recs = nil
			res := Build(cs, m.memo.opts)
			res.Services = nil
			return res
		}
		if r != nil && !r.reparse && c.ModRevision == r.rev && !m.nowLocal(r) {
			r.gen = m.gen
			continue
		}
		nr := m.parse(*c)
		nr.gen = m.gen
		m.recs[k] = nr
		delete(m.noted, k)
		if len(nr.probs) > 0 || nr.svc != nil && nr.svc.Default {
			m.noted[k] = true
		}
		changes = append(changes, change{k, r, nr})
	}
	// Every record of cs is in recs, each once: the same count means no
	// other record is.
	if len(m.recs) != len(cs) {
		for k, r := range m.recs {
			if r.gen != m.gen {
				delete(m.recs, k)
				delete(m.noted, k)
				changes = append(changes, change{k, r, nil})
			}
		}
	}

	// The names whose claims changed.
	dirty := map[string]bool{}
	var queue []string
	mark := func(n string) {
		if !dirty[n] {
			dirty[n] = true
			queue = append(queue, n)
		}
	}
	for _, ch := range changes {
		var oldSvc, newSvc *Service
		if ch.old != nil {
			oldSvc = ch.old.svc
		}
		if ch.new != nil {
			newSvc = ch.new.svc
		}
		for _, n := range claimedNames(oldSvc) {
			mark(n)
			if nm := m.names[n]; nm != nil {
				delete(nm.claimants, ch.k)
			}
		}
		for _, n := range claimedNames(newSvc) {
			mark(n)
			nm := m.names[n]
			if nm == nil {
				nm = &incName{claimants: map[memoKey]bool{}}
				m.names[n] = nm
			}
			nm.claimants[ch.k] = true
		}
	}
	// A service's redirect-from claims depend on its claim on its first
	// vhost: when that name is worked on, so are they.
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		nm := m.names[n]
		if nm == nil {
			continue
		}
		for k := range nm.claimants {
			svc := m.recs[k].svc
			if svc.Hosts[0] == n {
				for _, f := range svc.Site.Redirect.From {
					mark(f)
				}
			}
		}
	}

	// The claims on the dirty names, made again in claim order by every
	// service that claims one of them.
	var affected []*incRec
	inAffected := map[memoKey]bool{}
	for n := range dirty {
		if nm := m.names[n]; nm != nil {
			for k := range nm.claimants {
				if !inAffected[k] {
					inAffected[k] = true
					affected = append(affected, m.recs[k])
				}
			}
		}
	}
	slices.SortFunc(affected, func(a, b *incRec) int {
		x, y := a.c.CreateRevision, b.c.CreateRevision
		if (x == 0) != (y == 0) {
			if x == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(x, y), compareContainers(&a.c, &b.c))
	})
	claims := map[string]*claim{}
	probs := map[string][]Problem{}
	rejected := map[string]map[memoKey]bool{}
	reject := func(n string, k memoKey) {
		if rejected[n] == nil {
			rejected[n] = map[memoKey]bool{}
		}
		rejected[n][k] = true
	}
	for _, r := range affected {
		k := memoKey{r.c.Host, r.c.ID}
		svc := r.svc
		for _, h := range svc.Hosts {
			if !dirty[h] {
				continue
			}
			if msg := claimHost(claims, h, svc); msg != "" {
				probs[h] = append(probs[h], svcProblem(svc, SeverityError, LabelVhost, h,
					fmt.Sprintf("claim on this vhost rejected: %s", msg)))
				reject(h, k)
			}
		}
		if len(svc.Site.Redirect.From) == 0 {
			continue
		}
		first := svc.Hosts[0]
		if dirty[first] && rejected[first][k] || !dirty[first] && m.names[first].rejected[k] {
			if dirty[first] {
				probs[first] = append(probs[first], svcProblem(svc, SeverityWarning, LabelRedirectFrom, strings.Join(svc.Site.Redirect.From, ","),
					fmt.Sprintf("ignored: the claim on vhost %q, the redirect target, was rejected", first)))
			}
			continue
		}
		rs := redirectService(svc)
		for _, h := range svc.Site.Redirect.From {
			if !dirty[h] {
				continue
			}
			// The redirect claims the name's root path, as a vhost would:
			// first claimant wins.
			if msg := claimHost(claims, h, rs); msg != "" {
				probs[h] = append(probs[h], svcProblem(svc, SeverityError, LabelRedirectFrom, h,
					fmt.Sprintf("claim on this name rejected: %s", msg)))
			}
		}
	}
	for n := range dirty {
		nm := m.names[n]
		if nm == nil {
			continue
		}
		nm.route, nm.probs, nm.rejected = nil, probs[n], rejected[n]
		delete(m.probNames, n)
		if len(nm.probs) > 0 && len(nm.claimants) > 0 {
			m.probNames[n] = true
		}
		if cl := claims[n]; cl != nil {
			r := cl.route
			finishPaths(r, cl.paths)
			slices.Sort(r.Upstreams)
			r.Upstreams = slices.Compact(r.Upstreams)
			slices.Sort(r.Containers)
			r.Containers = slices.Compact(r.Containers)
			nm.route = r
		}
		if len(nm.claimants) == 0 {
			delete(m.names, n)
		}
		switch i, found := slices.BinarySearch(m.hosts, n); {
		case nm.route != nil && !found:
			m.hosts = slices.Insert(m.hosts, i, n)
		case nm.route == nil && found:
			m.hosts = slices.Delete(m.hosts, i, i+1)
		}
	}

	// The default server, from the (few) services that ask for it.
	var res Result
	var defs []*incRec
	for k := range m.noted {
		r := m.recs[k]
		res.Problems = append(res.Problems, r.probs...)
		if r.svc != nil && r.svc.Default {
			defs = append(defs, r)
		}
	}
	slices.SortFunc(defs, func(a, b *incRec) int { return compareContainers(&a.c, &b.c) })
	var def *Service
	for _, r := range defs {
		svc := r.svc
		key := defaultKey(r.c)
		switch {
		case m.names[svc.Hosts[0]].rejected[memoKey{r.c.Host, r.c.ID}]:
			res.Problems = append(res.Problems, svcProblem(svc, SeverityWarning, key, r.c.Labels[key],
				fmt.Sprintf("ignored: the claim on vhost %q was rejected", svc.Hosts[0])))
		case def == nil:
			def = svc
		case def.Hosts[0] != svc.Hosts[0]:
			res.Problems = append(res.Problems, svcProblem(svc, SeverityWarning, key, r.c.Labels[key],
				fmt.Sprintf("ignored: the default server is already vhost %q of container %q", def.Hosts[0], def.Container)))
		}
	}
	for n := range m.probNames {
		res.Problems = append(res.Problems, m.names[n].probs...)
	}
	res.Routes = make([]Route, 0, len(m.hosts))
	for _, h := range m.hosts {
		r := *m.names[h].route
		if def != nil && h == def.Hosts[0] {
			r.Default = true
		}
		res.Routes = append(res.Routes, r)
	}
	sortProblems(res.Problems)
	res.Problems = limitProblems(res.Problems)
	return res
}

// parse is one record's part of Build: rejected, or parsed.
func (m *Incremental) parse(c store.Container) *incRec {
	r := &incRec{c: c, rev: c.ModRevision, reparse: c.ModRevision == 0}
	if c.Rejected != "" {
		r.probs = []Problem{rejectedProblem(c)}
		return r
	}
	svc, probs := ParseService(c, m.memo.opts)
	r.probs = probs
	if hasError(probs) {
		r.reparse = true
		return r
	}
	if len(svc.Hosts) > 0 {
		r.svc = &svc
		if a, err := netip.ParseAddrPort(svc.Addr); err == nil {
			r.addr = a.Addr().Unmap()
		}
	}
	return r
}

// nowLocal is Memo.nowLocal of r's service, with its address parsed once.
func (m *Incremental) nowLocal(r *incRec) bool {
	return r.svc != nil && r.addr.IsValid() && m.memo.opts.LocalAddr != nil && m.memo.opts.LocalAddr(r.addr)
}
