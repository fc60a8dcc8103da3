package explain

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portico/portico/internal/status"
)

// WriteText prints the explanation for a person. Every string that comes
// from etcd passes through status.Escape (control characters, bidi
// overrides); errors were redacted by Build.
func (x Explanation) WriteText(w io.Writer, now time.Time) error {
	e := status.Escape
	list := func(ss []string) string { return dash(e(strings.Join(ss, ",")), "-") }
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\n", e(x.Summary))
	if x.Asked != "" {
		fmt.Fprintf(tw, "  (asked as %s)\n", e(x.Asked))
	}
	if len(x.Why) > 0 {
		title := "WHY IT IS NOT SERVED"
		if x.Served {
			title = "NOTES"
		}
		fmt.Fprintf(tw, "\n%s (%d)\n", title, len(x.Why))
		for _, s := range x.Why {
			fmt.Fprintf(tw, "  - %s\n", e(s))
		}
	}

	fmt.Fprintf(tw, "\n1. CLAIMS (%d)\n", len(x.Claims))
	if len(x.Claims) == 0 {
		fmt.Fprintf(tw, "  no container claims %s\n", e(x.Host))
	}
	for _, c := range x.Claims {
		fmt.Fprintf(tw, "  container %s on node %s: %s\n", e(c.Container), e(c.Node), e(c.Outcome))
		fmt.Fprintf(tw, "    key\t%s\n", e(c.Key))
		fmt.Fprintf(tw, "    id\t%s\n", e(c.ID))
		if c.Image != "" {
			fmt.Fprintf(tw, "    image\t%s\n", e(c.Image))
		}
		state := c.State
		if c.Health != "" {
			state += " (" + c.Health + ")"
		}
		fmt.Fprintf(tw, "    state\t%s\n", e(state))
		if c.Name != x.Host {
			fmt.Fprintf(tw, "    claims\t%s (covers %s)\n", e(c.Name), e(x.Host))
		}
		for _, k := range slices.Sorted(maps.Keys(c.Labels)) {
			fmt.Fprintf(tw, "    label\t%s=%s\n", e(k), e(strconv.Quote(c.Labels[k])))
		}
		for _, k := range slices.Sorted(maps.Keys(c.Env)) {
			fmt.Fprintf(tw, "    env\t%s=%s\n", e(k), e(strconv.Quote(c.Env[k])))
		}
		if c.Reason != "" {
			fmt.Fprintf(tw, "    why\t%s\n", e(c.Reason))
		}
	}

	fmt.Fprintf(tw, "\n2. SETTINGS AND PROBLEMS\n")
	if len(x.Claims) == 0 {
		fmt.Fprintln(tw, "  -")
	}
	for _, c := range x.Claims {
		fmt.Fprintf(tw, "  %s:\n", e(c.Container))
		if s := c.Settings; s != nil {
			up := dash(s.Addr, "none")
			if !s.Live {
				up += " (not live)"
			}
			fmt.Fprintf(tw, "    hosts\t%s\n", list(s.Hosts))
			fmt.Fprintf(tw, "    certificate names\t%s\n", list(s.CertHosts))
			fmt.Fprintf(tw, "    port %d, protocol %s, network %s, upstream %s\n", s.Port, e(s.Protocol), e(dash(s.Network, "-")), e(up))
			fmt.Fprintf(tw, "    https %s, hsts %s, default %t\n", e(s.HTTPS), hsts(s.HSTS), s.Default)
		} else {
			fmt.Fprintln(tw, "    not parsed (rejected or ignored)")
		}
		for _, p := range c.Problems {
			fmt.Fprintf(tw, "    %s: %s\n", e(string(p.Severity)), e(p.Error()))
		}
	}

	fmt.Fprintf(tw, "\n3. ROUTE\n")
	if r := x.Route; r != nil {
		h := r.Host
		if r.Wildcard {
			h += " (wildcard route covering " + x.Host + ")"
		}
		if r.Default {
			h += " (default server)"
		}
		fmt.Fprintf(tw, "  %s\n", e(h))
		fmt.Fprintf(tw, "    protocol %s, https %s, hsts %s\n", e(r.Protocol), e(r.HTTPS), hsts(r.HSTS))
		ups := list(r.Upstreams)
		if len(r.Upstreams) == 0 {
			ups = "none live (503)"
		}
		if r.NoRoot {
			ups = "none: no container serves / (404)"
		}
		fmt.Fprintf(tw, "    upstreams\t%s\n", ups)
		fmt.Fprintf(tw, "    containers\t%s\n", list(r.Containers))
		for _, p := range r.Paths {
			ups := list(p.Upstreams)
			if len(p.Upstreams) == 0 {
				ups = "none live (503)"
			}
			how := ""
			switch {
			case p.Strip:
				how = ", prefix stripped"
			case p.Dest != "":
				how = ", prefix replaced with " + p.Dest
			}
			fmt.Fprintf(tw, "    path %s\tprotocol %s%s; upstreams %s; containers %s\n", e(p.Path), e(p.Protocol), e(how), ups, list(p.Containers))
		}
	} else {
		fmt.Fprintf(tw, "  none: no route serves %s\n", e(x.Host))
	}

	fmt.Fprintf(tw, "\n4. CERTIFICATE\n")
	if c := x.Certificate; c != nil {
		fmt.Fprintf(tw, "  %s\n", e(c.Reason))
		if c.Primary != "" {
			fmt.Fprintf(tw, "    certificate\t%s\n", e(c.Primary))
			fmt.Fprintf(tw, "    names\t%s\n", list(c.Names))
			iss := dash(c.Issuer, "-")
			if c.IssuerURL != "" {
				iss += " (" + c.IssuerURL + ")"
			}
			fmt.Fprintf(tw, "    issuer\t%s\n", e(iss))
			fmt.Fprintf(tw, "    expires\t%s\n", when(c.NotAfter, now))
			fmt.Fprintf(tw, "    renews\t%s\n", when(c.NextRenewal, now))
			if c.Condition != "" {
				fmt.Fprintf(tw, "    condition\t%s\n", e(c.Condition))
			}
			if c.Error != "" {
				fmt.Fprintf(tw, "    last error\t%s (retry %s)\n", e(c.Error), when(c.RetryAt, now))
			}
		}
		for _, r := range c.Rejected {
			fmt.Fprintf(tw, "    rejected\t%s\n", e(r))
		}
	} else {
		fmt.Fprintln(tw, "  - (no route)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\n5. SERVER BLOCK\n")
	switch {
	case x.ServerBlock != "":
		for _, l := range strings.Split(strings.TrimRight(x.ServerBlock, "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", e(l))
		}
	case x.RenderError != "":
		fmt.Fprintf(w, "  none: %s\n", e(x.RenderError))
	default:
		fmt.Fprintln(w, "  - (no route)")
	}
	if x.DynamicLine != "" {
		lines := strings.Split(x.DynamicLine, "\n")
		what := "this table line"
		if len(lines) > 1 {
			what = "these table lines"
		}
		fmt.Fprintf(w, "  on the dynamic path (docs/nginx.md), nginx serves %s instead:\n", what)
		for _, l := range lines {
			fmt.Fprintf(w, "  %s\n", e(strings.ReplaceAll(l, "\t", " | ")))
		}
	}

	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\n6. NGINX (%d)\n", len(x.Nginx))
	if len(x.Nginx) == 0 {
		fmt.Fprintln(tw, "  no nginx stage has reported")
	}
	for _, n := range x.Nginx {
		fmt.Fprintf(tw, "  %s\t%s\tconfig %s\t%s\n", e(n.Instance), e(n.State), e(dash(n.Config, "-")), e(n.Detail))
	}
	if len(x.Unreadable) > 0 {
		fmt.Fprintf(tw, "\nUNREADABLE RECORDS (%d)\n", len(x.Unreadable))
		for _, s := range x.Unreadable {
			fmt.Fprintf(tw, "  %s\n", e(s))
		}
	}
	return tw.Flush()
}

// WriteJSON prints the explanation as JSON through the status package's
// writer (C1 controls and bidi overrides escaped).
func (x Explanation) WriteJSON(w io.Writer) error { return status.EncodeJSON(w, x) }

func hsts(h string) string {
	if h == "" {
		return "off"
	}
	return h
}

func when(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(now)
	rel := ""
	switch days := d.Hours() / 24; {
	case days >= 2:
		rel = fmt.Sprintf("in %d days", int(days))
	case days <= -2:
		rel = fmt.Sprintf("%d days ago", int(-days))
	case d >= 0:
		rel = "in " + d.Round(time.Minute).String()
	default:
		rel = (-d).Round(time.Minute).String() + " ago"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC") + " (" + rel + ")"
}
