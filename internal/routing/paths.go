package routing

import (
	"fmt"
	"slices"

	"github.com/portico/portico/internal/pathprefix"
)

// pathSettings reads the path a container serves (portico.path, or
// nginx-proxy's VIRTUAL_PATH) and what its upstream gets (portico.strip-path,
// or VIRTUAL_DEST): package pathprefix validates the values. Decisions (also
// in docs/labels.md):
//   - No path, or "/", is Service.Path "": every path of the vhost.
//   - portico.strip-path=true and VIRTUAL_DEST both set: the label wins and
//     VIRTUAL_DEST is ignored with a warning.
//   - portico.strip-path on "/" changes nothing and gets a warning.
func (p *parser) pathSettings(svc *Service) {
	if s := p.lookup(label(LabelPath), env(EnvVirtualPath)); s.ok {
		path, err := pathprefix.Parse(s.value)
		if err != nil {
			p.add(SeverityError, s.key, s.value, "%v", err)
			return
		}
		if path != pathprefix.Root {
			svc.Path = path
		}
	}
	if s := p.lookup(label(LabelStripPath)); s.ok {
		on, err := parseBool(s.value)
		switch {
		case err != nil:
			p.add(SeverityError, s.key, s.value, "%v", err)
		case on && svc.Path == "":
			p.add(SeverityWarning, s.key, s.value, "ignored: the path is %s, there is no prefix to strip", pathprefix.Root)
		default:
			svc.Strip = on
		}
	}
	if s := p.lookup(env(EnvVirtualDest)); s.ok {
		dest, err := pathprefix.ParseDest(s.value)
		switch {
		case err != nil:
			p.add(SeverityError, s.key, s.value, "%v", err)
		case svc.Strip:
			p.add(SeverityWarning, s.key, s.value, "ignored: %s=true strips the prefix", LabelStripPath)
		default:
			svc.Dest = dest
		}
	}
}

// pathConflict describes how svc's settings for its path differ from the
// path's first claimant's, or "".
func pathConflict(owner, svc *Service) string {
	differ := func(what string, mine, theirs any) string {
		first := "this vhost"
		if svc.Path != "" {
			first = "this vhost and path " + svc.Path
		}
		return fmt.Sprintf("%s %v differs from %v set by container %q, which claimed %s first", what, mine, theirs, owner.Container, first)
	}
	switch {
	case svc.Protocol != owner.Protocol:
		return differ(LabelProtocol, svc.Protocol, owner.Protocol)
	case svc.Strip != owner.Strip:
		return differ(LabelStripPath, svc.Strip, owner.Strip)
	case svc.Dest != owner.Dest:
		return differ(EnvVirtualDest, quoteEmpty(svc.Dest), quoteEmpty(owner.Dest))
	case svc.Root != owner.Root:
		return differ(LabelRoot, svc.Root, owner.Root)
	}
	if label, mine, theirs := svc.Site.Diff(owner.Site); label != "" {
		return differ(label, mine, theirs)
	}
	return ""
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// pathClaim is a path of a vhost being built: its first claimant defines it.
type pathClaim struct {
	route *PathRoute // nil for the root path, whose fields are the Route's
	owner *Service
}

// claimPath records svc's claim on its path of the vhost r, whose paths so
// far are in paths. It returns a message when the claim is rejected: the
// path's first claimant set other path settings, or the vhost already has
// pathprefix.MaxPerHost prefixes.
func claimPath(r *Route, paths map[string]*pathClaim, svc *Service) string {
	pc := paths[svc.Path]
	if pc == nil {
		if svc.Path != "" && len(paths) >= pathprefix.MaxPerHost {
			return fmt.Sprintf("the vhost already has %d path prefixes, the most it may have; path %s is not served", len(paths), svc.Path)
		}
		pc = &pathClaim{owner: svc}
		if svc.Path == "" {
			r.Protocol, r.Site, r.Dest, r.Root, r.NoRoot = svc.Protocol, svc.Site, svc.Dest, svc.Root, false
		} else {
			pc.route = &PathRoute{Path: svc.Path, Strip: svc.Strip, Dest: svc.Dest, Protocol: svc.Protocol, Site: svc.Site}
		}
		paths[svc.Path] = pc
	} else if msg := pathConflict(pc.owner, svc); msg != "" {
		return msg
	}
	r.Containers = append(r.Containers, svc.Container)
	if pc.route == nil {
		if svc.Live {
			r.Upstreams = append(r.Upstreams, svc.Addr)
		}
		return ""
	}
	pc.route.Containers = append(pc.route.Containers, svc.Container)
	if svc.Live {
		pc.route.Upstreams = append(pc.route.Upstreams, svc.Addr)
	}
	return ""
}

// finishPaths sorts r's lists and collects its paths in
// pathprefix.Sort order.
func finishPaths(r *Route, paths map[string]*pathClaim) {
	r.Paths = nil
	for _, pc := range paths {
		if pc.route == nil {
			continue
		}
		pr := pc.route
		slices.Sort(pr.Upstreams)
		pr.Upstreams = slices.Compact(pr.Upstreams)
		slices.Sort(pr.Containers)
		pr.Containers = slices.Compact(pr.Containers)
		r.Paths = append(r.Paths, *pr)
	}
	slices.SortFunc(r.Paths, func(a, b PathRoute) int {
		if len(a.Path) != len(b.Path) {
			return len(b.Path) - len(a.Path)
		}
		if a.Path < b.Path {
			return -1
		}
		return 1
	})
}
