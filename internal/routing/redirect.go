package routing

import (
	"github.com/portico/portico/internal/siteopts"
)

// redirectOptions reads portico.redirect-to, portico.redirect-code and
// portico.redirect-keep-path (docs/labels.md, "Redirects"). The code and
// keep-path labels without redirect-to are errors: they would do nothing.
func (p *parser) redirectOptions(o *siteopts.Options) {
	keep := false
	ks := p.lookup(label(LabelRedirectKeepPath))
	if ks.ok {
		on, err := parseBool(ks.value)
		if err != nil {
			p.add(SeverityError, ks.key, ks.value, "%v", err)
		}
		keep = on
	}
	cs := p.lookup(label(LabelRedirectCode))
	code := 0
	if cs.ok {
		c, err := siteopts.ParseRedirectCode(cs.value)
		if err != nil {
			p.add(SeverityError, cs.key, cs.value, "%v", err)
		}
		code = c
	}
	to := p.lookup(label(LabelRedirectTo))
	if !to.ok {
		if cs.ok {
			p.add(SeverityError, cs.key, cs.value, "set without %s", LabelRedirectTo)
		}
		if ks.ok {
			p.add(SeverityError, ks.key, ks.value, "set without %s", LabelRedirectTo)
		}
		return
	}
	u, err := siteopts.ParseRedirectTo(to.value, keep)
	if err != nil {
		p.add(SeverityError, to.key, to.value, "%v", err)
		return
	}
	o.Redirect.To, o.Redirect.Code, o.Redirect.KeepPath = u, code, keep
}

// redirectFrom reads portico.redirect-from: host names, as a vhost list,
// that redirect to svc.Hosts[0]. Each is validated as a vhost (no wildcard:
// a redirect needs one target name per name), must not be one of svc's own
// vhosts, and must pass --allowed-domains. Unless HTTPS is off, the names
// join the container's certificate (after its own names; Hosts[0] stays
// the subject). Vhosts plus redirect names are at most MaxNames, the
// names one certificate holds.
func (p *parser) redirectFrom(svc *Service, opts Options) {
	s := p.lookup(label(LabelRedirectFrom))
	if !s.ok {
		return
	}
	own := make(map[string]bool, len(svc.Hosts))
	for _, h := range svc.Hosts {
		own[h] = true
	}
	names, raws := p.hostItems(s)
	var from []string
	for i, n := range names {
		switch {
		case n[0] == '*' || IsTrailingWildcard(n):
			p.add(SeverityError, s.key, raws[i], "a wildcard cannot redirect: list the names")
		case own[n]:
			p.add(SeverityError, s.key, raws[i], "%q is also a vhost of this container (%s)", n, LabelVhost)
		case !opts.Allowed.Allows(p.c.Host, n):
			p.add(SeverityError, s.key, raws[i], "host name not allowed for node %q (--allowed-domains)", Clip(p.c.Host, maxItemBytes))
		default:
			from = append(from, n)
		}
	}
	if len(svc.Hosts)+len(from) > MaxNames {
		p.add(SeverityError, s.key, s.value, "%d vhosts and %d redirect names: more than %d names (Let's Encrypt's limit per certificate)", len(svc.Hosts), len(from), MaxNames)
		return
	}
	svc.Site.Redirect.From = from
	if svc.HTTPS != HTTPSOff && len(svc.Hosts) > 0 {
		for _, n := range from {
			if !contains(svc.CertHosts, n) {
				svc.CertHosts = append(svc.CertHosts, n)
			}
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// knownPrefix reports whether k is under one of KnownLabelPrefixes.
func knownPrefix(k string) bool {
	for _, pre := range KnownLabelPrefixes {
		if hasPrefix(k, pre) {
			return true
		}
	}
	return false
}

// redirectService is the claimant of svc's portico.redirect-from names, as
// Build compares claimants: svc's protocol, HTTPS mode and HSTS, and as its
// only option a redirect to svc.Hosts[0]. A name one container redirects
// and another serves, or two containers redirect to different vhosts, is a
// conflict (first claimant wins); replicas that redirect the same names to
// the same vhost agree.
func redirectService(svc *Service) *Service {
	rs := *svc
	rs.Hosts = nil
	rs.Site = siteopts.Options{Redirect: siteopts.Redirect{Host: svc.Hosts[0]}}
	// The redirect answers every path of the name itself: it claims the
	// root path and has no upstream.
	rs.Path, rs.Strip, rs.Dest, rs.Root = "", false, "", ""
	rs.Live, rs.Addr = false, ""
	return &rs
}
