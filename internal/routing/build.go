package routing

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/portico/portico/internal/store"
)

// Build turns container records into Services, Routes and Problems. It is
// deterministic for any input order: records are first sorted by (Name, Node,
// ID), and "first" below means first in that order.
//
// Decisions (also in docs/labels.md):
//   - Each container is parsed by ParseService; a rejected container is left
//     out alone and the others are unaffected. A second record with the same
//     (Node, ID) is rejected with an error.
//   - A record the reporter marked Rejected (e.g. over its size cap) is
//     never routed: it yields one SeverityError problem naming the
//     container and the reason.
//   - Containers claiming one vhost join one Route. Upstreams are the live
//     claimants' Addrs, sorted and unique (empty when none is live: nginx
//     answers 503 for the known vhost). Containers are the accepted
//     claimants' names, sorted and unique, live or not. A stopping
//     container is not live but still claims its vhosts, so it keeps
//     owning them while it stops.
//   - Paths (paths.go): each container serves one path prefix (Service.Path,
//     "/" by default) on each of its vhosts. Containers with the same vhost
//     and the same path are replicas of one upstream; containers with other
//     paths on one vhost each get their own (Route.Paths). A vhost no
//     container serves "/" of is NoRoot: unmatched paths get 404.
//   - The earliest claimant of a vhost defines its HTTPS and HSTS, and the
//     earliest claimant of a vhost and path its Protocol, strip-path, dest
//     and per-site options.
//     Claimants are ordered by their record's etcd CreateRevision (0, i.e.
//     unknown, last), then by (Name, Node, ID): a container cannot take a
//     vhost over by sorting first, the one whose record existed first keeps
//     it. A later claimant that differs in any of them has its claim on that
//     vhost rejected with a SeverityError problem (label portico.vhost, value
//     the host) naming both containers; it is not an upstream there, but its
//     Service and its other vhosts are kept. Ports and networks may differ
//     between replicas. A vhost holds at most pathprefix.MaxPerHost path
//     prefixes; a claim on one more is rejected the same way.
//   - Default server: the first container with portico.default=true makes its
//     first vhost (Hosts[0]) the default, provided its claim on that vhost was
//     accepted. Replicas whose Hosts[0] is that same vhost agree and get no
//     warning; any other claimant of default gets a warning and is ignored.
//   - A wildcard vhost and exact vhosts are separate routes (nginx prefers the
//     exact name).
//   - At most MaxProblems problems are recorded per container, plus one
//     summary that counts the rest.
func Build(cs []store.Container, opts Options) Result {
	return build(cs, opts, func(c store.Container) (Service, []Problem) { return ParseService(c, opts) })
}

func build(cs []store.Container, opts Options, parse func(store.Container) (Service, []Problem)) Result {
	sorted := make([]*store.Container, len(cs))
	for i := range cs {
		sorted[i] = &cs[i]
	}
	slices.SortFunc(sorted, compareContainers)

	var res Result
	if len(sorted) > 0 {
		res.Services = make([]Service, 0, len(sorted))
	}
	type nodeID struct{ node, id string }
	seen := make(map[nodeID]bool, len(sorted))
	parsed := make([]store.Container, 0, len(sorted)) // records of res.Services, same index
	for _, cp := range sorted {
		c := *cp
		k := nodeID{c.Host, c.ID}
		if seen[k] {
			res.Problems = append(res.Problems, newProblem(SeverityError, c.ID, strings.TrimPrefix(c.Name, "/"), c.Host, "", "",
				fmt.Sprintf("duplicate record for container id %q on node %q; ignored", Clip(c.ID, maxItemBytes), Clip(c.Host, maxItemBytes))))
			continue
		}
		seen[k] = true
		if c.Rejected != "" {
			res.Problems = append(res.Problems, rejectedProblem(c))
			continue
		}
		svc, probs := parse(c)
		res.Problems = append(res.Problems, probs...)
		if hasError(probs) || len(svc.Hosts) == 0 {
			continue
		}
		res.Services = append(res.Services, svc)
		parsed = append(parsed, c)
	}

	routes := make(map[string]*claim)
	type hostSvc struct {
		host string
		svc  int
	}
	rejected := make(map[hostSvc]bool)
	for _, i := range claimOrder(parsed) {
		svc := &res.Services[i]
		for _, h := range svc.Hosts {
			if msg := claimHost(routes, h, svc); msg != "" {
				res.Problems = append(res.Problems, svcProblem(svc, SeverityError, LabelVhost, h,
					fmt.Sprintf("claim on this vhost rejected: %s", msg)))
				rejected[hostSvc{h, i}] = true
			}
		}
		if len(svc.Site.Redirect.From) == 0 {
			continue
		}
		if rejected[hostSvc{svc.Hosts[0], i}] {
			res.Problems = append(res.Problems, svcProblem(svc, SeverityWarning, LabelRedirectFrom, strings.Join(svc.Site.Redirect.From, ","),
				fmt.Sprintf("ignored: the claim on vhost %q, the redirect target, was rejected", svc.Hosts[0])))
			continue
		}
		rs := redirectService(svc)
		for _, h := range svc.Site.Redirect.From {
			// The redirect claims the name's root path, as a vhost would:
			// first claimant wins.
			if msg := claimHost(routes, h, rs); msg != "" {
				res.Problems = append(res.Problems, svcProblem(svc, SeverityError, LabelRedirectFrom, h,
					fmt.Sprintf("claim on this name rejected: %s", msg)))
			}
		}
	}

	var def *Service
	for i := range res.Services {
		svc := &res.Services[i]
		if !svc.Default {
			continue
		}
		key := defaultKey(parsed[i])
		switch {
		case rejected[hostSvc{svc.Hosts[0], i}]:
			res.Problems = append(res.Problems, svcProblem(svc, SeverityWarning, key, parsed[i].Labels[key],
				fmt.Sprintf("ignored: the claim on vhost %q was rejected", svc.Hosts[0])))
		case def == nil:
			def = svc
			routes[svc.Hosts[0]].route.Default = true
		case def.Hosts[0] != svc.Hosts[0]:
			res.Problems = append(res.Problems, svcProblem(svc, SeverityWarning, key, parsed[i].Labels[key],
				fmt.Sprintf("ignored: the default server is already vhost %q of container %q", def.Hosts[0], def.Container)))
		}
	}

	// Sorted by host: the names are sorted, not the (large) routes.
	hosts := make([]string, 0, len(routes))
	for h := range routes {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	res.Routes = make([]Route, 0, len(routes))
	for _, h := range hosts {
		cl := routes[h]
		r := cl.route
		finishPaths(r, cl.paths)
		slices.Sort(r.Upstreams)
		r.Upstreams = slices.Compact(r.Upstreams)
		slices.Sort(r.Containers)
		r.Containers = slices.Compact(r.Containers)
		res.Routes = append(res.Routes, *r)
	}
	sortProblems(res.Problems)
	res.Problems = limitProblems(res.Problems)
	return res
}

// compareContainers orders records by Name, Node, ID; the rest of the record
// breaks ties so even malformed duplicate records sort the same way.
func compareContainers(a, b *store.Container) int {
	if c := cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Host, b.Host), cmp.Compare(a.ID, b.ID)); c != 0 {
		return c
	}
	return cmp.Compare(fmt.Sprintf("%#v", *a), fmt.Sprintf("%#v", *b))
}

// claimOrder returns the indexes of records in the order their vhost claims
// count: by CreateRevision (0, unknown, last), then Name, Node, ID.
func claimOrder(records []store.Container) []int {
	idx := make([]int, len(records))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(i, j int) int {
		a, b := records[i].CreateRevision, records[j].CreateRevision
		if (a == 0) != (b == 0) {
			if a == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a, b), compareContainers(&records[i], &records[j]))
	})
	return idx
}

// maxReasonBytes bounds the reporter's reason quoted in a problem: a record
// written straight into etcd may carry anything.
const maxReasonBytes = 256

// rejectedProblem reports a record the reporter marked as rejected.
func rejectedProblem(c store.Container) Problem {
	reason := Clip(c.Rejected, maxReasonBytes)
	return Problem{
		Severity: SeverityError, ContainerID: c.ID, Container: strings.TrimPrefix(c.Name, "/"), Node: c.Host,
		Message: fmt.Sprintf("not routed: the reporter rejected the container: %q", reason),
	}
}

// conflict describes how svc's vhost-wide settings (HTTPS mode, HSTS)
// differ from the vhost's first claimant's, whatever their paths, or "".
// The settings of a path are compared by pathConflict.
func conflict(owner, svc *Service) string {
	if owner == svc {
		return ""
	}
	differ := func(what string, mine, theirs any) string {
		return fmt.Sprintf("%s %v differs from %v set by container %q, which claimed this vhost first", what, mine, theirs, owner.Container)
	}
	switch {
	case svc.HTTPS != owner.HTTPS:
		return differ(LabelHTTPS, svc.HTTPS, owner.HTTPS)
	case svc.HSTS != owner.HSTS:
		return differ(LabelHSTS, svc.HSTS, owner.HSTS)
	}
	return ""
}

// defaultKey is the label that set Default on c.
func defaultKey(c store.Container) string {
	if strings.TrimSpace(c.Labels[LabelDefault]) == "" && strings.TrimSpace(c.Labels[LegacyDefault]) != "" {
		return LegacyDefault
	}
	return LabelDefault
}

func svcProblem(svc *Service, sev Severity, label, value, msg string) Problem {
	return newProblem(sev, svc.ContainerID, svc.Container, svc.Node, label, value, msg)
}

func hasError(ps []Problem) bool {
	return slices.ContainsFunc(ps, func(p Problem) bool { return p.Severity == SeverityError })
}

// claim is a name's route as its claimants made it so far.
type claim struct {
	route *Route
	owner *Service // first claimant: defines the vhost's settings
	paths map[string]*pathClaim
}

// claimHost makes svc's claim on the name h against the claims made before
// it (claims, filled in claim order): the first claimant's route, then its
// paths. It returns why the claim is rejected, or "".
func claimHost(claims map[string]*claim, h string, svc *Service) string {
	cl := claims[h]
	if cl == nil {
		cl = &claim{route: &Route{Host: h, Protocol: ProtoHTTP, HTTPS: svc.HTTPS, HSTS: svc.HSTS, NoRoot: true},
			owner: svc, paths: map[string]*pathClaim{}}
		claims[h] = cl
	}
	if msg := conflict(cl.owner, svc); msg != "" {
		return msg
	}
	return claimPath(cl.route, cl.paths, svc)
}
