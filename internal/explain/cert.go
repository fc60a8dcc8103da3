package explain

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/portico/portico/internal/certs"
	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/redact"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// explainCert renders the route alone with the real renderer and the
// certificates the nginx stage would accept, and says how it is served over
// HTTPS and why.
func explainCert(x *Explanation, in Input, s snapshot, route routing.Route) {
	refs, rejected := render.UsableCerts(s.bundles)
	c := &Certificate{}
	for _, key := range slices.Sorted(maps.Keys(rejected)) {
		if b := s.bundles[key]; certs.Covers(b.Names, route.Host) || slices.Contains(b.Names, route.Host) {
			c.Rejected = append(c.Rejected, redact.String(rejected[key].Error()))
		}
	}
	v, err := render.RenderVhost(render.Input{Routes: []routing.Route{route}, Certs: refs, Settings: in.Render}, route.Host)
	if err != nil {
		x.RenderError = redact.String(err.Error())
		x.Why = append(x.Why, "the route does not render: "+x.RenderError)
	} else {
		x.ServerBlock = v.Block
		if v.Block == "" {
			x.RenderError = `the template defines no "vhost" block to show`
		}
	}
	c.HTTPS, c.Redirect = v.TLS, v.Redirect
	x.DynamicLine = dynamicLine(route, refs, in.Render)

	// The certificate: the one the renderer picked, else the one the certs
	// stage wants for this name.
	var bundles []store.CertBundle
	for _, key := range slices.Sorted(maps.Keys(s.bundles)) {
		bundles = append(bundles, s.bundles[key])
	}
	report := certs.Report(s.wanted, bundles, s.states, in.Now)
	primary := v.CertName
	if primary == "" && route.HTTPS != routing.HTTPSOff {
		if ref, ok := render.CertFor(route.Host, refs); ok {
			primary = ref.Primary
		} else {
			for _, st := range report {
				if st.Condition != certs.CondUnused && (certs.Covers(st.Names, route.Host) || slices.Contains(st.Names, route.Host)) {
					primary = st.Primary
					break
				}
			}
		}
	}
	if primary != "" {
		c.Primary = primary
		if b, ok := s.bundles[in.Keys.CertBundle(primary)]; ok {
			c.Names, c.Issuer, c.IssuerURL, c.Serial, c.NotBefore, c.NotAfter = b.Names, b.Issuer, redact.String(b.IssuerURL), b.Serial, b.NotBefore, b.NotAfter
		}
		if i := slices.IndexFunc(report, func(st certs.CertStatus) bool { return st.Primary == primary }); i >= 0 {
			st := report[i]
			if c.Names == nil {
				c.Names, c.Issuer = st.Names, st.Issuer
			}
			c.Condition, c.NextRenewal, c.Error, c.RetryAt = st.Condition, st.NextRenewal, redact.String(st.Error), st.RetryAt
		}
	}
	c.Reason = certReason(c, route, in.Render, x.Host, refs)
	if !c.HTTPS && route.HTTPS != routing.HTTPSOff {
		x.Why = append(x.Why, "no HTTPS: "+c.Reason)
	}
	if c.HTTPS && c.Names != nil && !certs.Covers(c.Names, x.Host) {
		x.Why = append(x.Why, fmt.Sprintf("certificate %q does not cover %s (a wildcard certificate covers one label): HTTPS clients will refuse it", c.Primary, x.Host))
	}
	x.Certificate = c
}

// certReason says why the route is or is not served over HTTPS, and whether
// plain HTTP redirects.
func certReason(c *Certificate, route routing.Route, st render.Settings, host string, refs []render.CertRef) string {
	switch {
	case route.HTTPS == routing.HTTPSOff:
		return routing.LabelHTTPS + "=off: HTTP only, no certificate is requested"
	case len(st.HTTPSAddrs) == 0:
		return "nginx has no HTTPS listen address (--https-addr is empty): HTTP only"
	case c.HTTPS:
		local := slices.ContainsFunc(refs, func(r render.CertRef) bool { return r.Primary == c.Primary && r.Local })
		kind := "an ACME certificate"
		if local {
			kind = "a local-CA certificate"
		}
		var why string
		switch {
		case route.HTTPS == routing.HTTPSBoth:
			why = fmt.Sprintf("served over HTTPS with %s and over HTTP (%s=both)", kind, routing.LabelHTTPS)
		case c.Redirect && route.HTTPS == routing.HTTPSRedirect:
			why = fmt.Sprintf("served over HTTPS with %s; HTTP redirects to it (%s=redirect)", kind, routing.LabelHTTPS)
		case c.Redirect:
			why = fmt.Sprintf("served over HTTPS with %s, which is publicly trusted, so HTTP redirects to it (%s=auto)", kind, routing.LabelHTTPS)
		default:
			why = fmt.Sprintf("served over HTTPS with %s, which browsers do not trust, and over HTTP without a redirect (%s=auto)", kind, routing.LabelHTTPS)
		}
		if c.Condition == certs.CondExpired {
			why += "; the certificate has expired"
		}
		return why
	case len(c.Rejected) > 0:
		return "the stored certificate is rejected by the nginx stage's bundle check: " + c.Rejected[0]
	case c.Condition == certs.CondFailing:
		msg := fmt.Sprintf("no certificate yet: obtaining %q failed: %s", c.Primary, c.Error)
		if !c.RetryAt.IsZero() {
			msg += "; retry at " + c.RetryAt.UTC().Format("2006-01-02 15:04 UTC")
		}
		return msg
	case c.Primary != "":
		return fmt.Sprintf("no certificate yet: %q is %s at the certs stage", c.Primary, dash(c.Condition, "wanted"))
	}
	return "no certificate yet: the certs stage lists none for " + host + " (is it running?)"
}

func dash(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

// dynamicLine is route's line in the dynamic path's table, then one line
// per path prefix (newline-separated), decided by the
// nginx stage's own DynamicTable; "" when it cannot be built.
func dynamicLine(route routing.Route, refs []render.CertRef, st render.Settings) string {
	tab, _, err := render.DynamicTable([]routing.Route{route}, refs, st, "")
	if err != nil {
		return ""
	}
	body, _, err := tab.Encode()
	if err != nil {
		return ""
	}
	var lines []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "route\t") || strings.HasPrefix(l, "path\t") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}
