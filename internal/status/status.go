// Package status builds what `portico status` shows from a snapshot of the
// store. It is pure: the command fetches the keys, this package decides and
// formats.
package status

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portico/portico/internal/certs"
	"github.com/portico/portico/internal/hosts"
	"github.com/portico/portico/internal/redact"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// Report is the whole status.
type Report struct {
	Containers []Container         `json:"containers"`
	Routes     []routing.Route     `json:"routes"`
	Problems   []routing.Problem   `json:"problems"`
	Nginx      []store.NginxStatus `json:"nginx"`
	Certs      []certs.CertStatus  `json:"certs"`
	Store      []string            `json:"store_errors,omitempty"`
	Counts     map[string]int      `json:"counts"`
	// Hosts are the Docker hosts with liveness keys (internal/hosts),
	// sorted by name.
	Hosts []hosts.Status `json:"hosts,omitempty"`
}

// Container is one container line.
type Container struct {
	Name   string `json:"name"`
	Node   string `json:"node"`
	ID     string `json:"id"`
	State  string `json:"state"`
	Health string `json:"health,omitempty"`
	// Stopping: Docker sent the container its stop signal and it has not
	// exited; it is out of rotation.
	Stopping bool     `json:"stopping,omitempty"`
	Vhosts   []string `json:"vhosts,omitempty"`
	Addr     string   `json:"addr,omitempty"`
	Live     bool     `json:"live"`
	// HostState is "stale" while the container's host has lost its
	// heartbeat (still routed) and "expired" past the host expiry (not
	// routed); "" when the host is live.
	HostState string `json:"host_state,omitempty"`
}

// Build derives the report from every key under keys' prefix, without
// create revisions (vhost ownership then falls back to name order); the
// command uses BuildEntries.
func Build(kvs map[string][]byte, keys store.Keys, opts routing.Options) Report {
	entries := make(map[string]store.Entry, len(kvs))
	for k, v := range kvs {
		entries[k] = store.Entry{Value: v}
	}
	return BuildEntries(entries, keys, opts)
}

// BuildEntries derives the report from every key under keys' prefix, with
// the keys' create revisions, which decide who owns a contested vhost.
// Hosts are judged without a clock: stale hosts are marked, none is
// expired (GatherExpiry judges at a time).
func BuildEntries(entries map[string]store.Entry, keys store.Keys, opts routing.Options) Report {
	return buildEntries(entries, keys, opts, hosts.Judge(entries, keys, time.Time{}, -1))
}

func buildEntries(entries map[string]store.Entry, keys store.Keys, opts routing.Options, j hosts.Judgement) Report {
	r := Report{Counts: map[string]int{}}
	var cs []store.Container
	for k, e := range entries {
		v := e.Value
		switch {
		case strings.HasPrefix(k, keys.Containers()):
			c, err := store.DecodeContainerEntry(k, e)
			if err != nil {
				r.Store = append(r.Store, err.Error())
				continue
			}
			cs = append(cs, c)
		case strings.HasPrefix(k, keys.NginxStatuses()):
			var n store.NginxStatus
			if err := store.Decode(k, v, &n); err != nil {
				r.Store = append(r.Store, err.Error())
				continue
			}
			r.Nginx = append(r.Nginx, n)
		}
	}
	res := routing.Build(j.Serve(cs), opts)
	for _, err := range j.Problems {
		r.Store = append(r.Store, err.Error())
	}
	for _, h := range slices.Sorted(maps.Keys(j.Hosts)) {
		st := j.Hosts[h]
		r.Hosts = append(r.Hosts, st)
		if st.State != hosts.Live {
			r.Counts[string(st.State)+"_hosts"]++
		}
	}
	svc := map[string]routing.Service{}
	for _, s := range res.Services {
		svc[s.Node+"/"+s.ContainerID] = s
	}
	for _, c := range cs {
		line := Container{Name: c.Name, Node: c.Host, ID: shortID(c.ID), State: c.State, Health: c.Health, Stopping: c.Stopping}
		if st := j.State(c.Host); st != hosts.Live {
			line.HostState = string(st)
		}
		if s, ok := svc[c.Host+"/"+c.ID]; ok {
			line.Vhosts, line.Addr, line.Live = s.Hosts, s.Addr, s.Live
		}
		r.Containers = append(r.Containers, line)
	}
	sort.Slice(r.Containers, func(i, j int) bool {
		a, b := r.Containers[i], r.Containers[j]
		return a.Name+"\x00"+a.Node+"\x00"+a.ID < b.Name+"\x00"+b.Node+"\x00"+b.ID
	})
	sort.Slice(r.Nginx, func(i, j int) bool { return r.Nginx[i].Instance < r.Nginx[j].Instance })
	sort.Strings(r.Store)
	r.Routes, r.Problems = res.Routes, res.Problems
	r.Counts["containers"] = len(r.Containers)
	r.Counts["routes"] = len(r.Routes)
	for _, p := range r.Problems {
		r.Counts[string(p.Severity)+"s"]++
	}
	return r
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// WriteText prints the report for a person. Every string that comes from
// etcd passes through Escape (control characters, bidi overrides), and every
// error through redact.String (URL credentials).
func (r Report) WriteText(w io.Writer, now time.Time) error {
	e, list := Escape, func(ss []string) string { return Escape(strings.Join(ss, ",")) }
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "CONTAINERS (%d)\n", len(r.Containers))
	fmt.Fprintln(tw, "  NAME\tNODE\tID\tSTATE\tVHOSTS\tUPSTREAM")
	for _, c := range r.Containers {
		state := c.State
		if c.Health != "" {
			state += " (" + c.Health + ")"
		}
		if c.Stopping {
			state += " (stopping)"
		}
		if c.HostState != "" {
			state += " (host " + c.HostState + ")"
		}
		up := c.Addr
		if up != "" && !c.Live {
			up += " (not live)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", e(c.Name), e(c.Node), e(c.ID), e(state), dash(list(c.Vhosts)), dash(e(up)))
	}
	fmt.Fprintf(tw, "\nROUTES (%d)\n", len(r.Routes))
	fmt.Fprintln(tw, "  VHOST\tPROTOCOL\tHTTPS\tUPSTREAMS\tCONTAINERS")
	for _, rt := range r.Routes {
		host := rt.Host
		if rt.Default {
			host += " (default)"
		}
		ups := strings.Join(rt.Upstreams, ",")
		if ups == "" {
			ups = "none live (503)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", e(host), e(rt.Protocol), e(rt.HTTPS), e(ups), list(rt.Containers))
	}
	if len(r.Certs) > 0 {
		fmt.Fprintf(tw, "\nCERTIFICATES (%d)\n", len(r.Certs))
		fmt.Fprintln(tw, "  PRIMARY\tNAMES\tISSUER\tCONDITION\tEXPIRES\tRENEWS\tLAST ERROR")
		for _, c := range r.Certs {
			errs := dash(e(redact.String(c.Error)))
			if !c.RetryAt.IsZero() && c.Error != "" {
				errs += fmt.Sprintf(" (retry %s)", when(c.RetryAt, now))
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", e(c.Primary), list(c.Names), dash(e(c.Issuer)), e(c.Condition), when(c.NotAfter, now), when(c.NextRenewal, now), errs)
		}
	}
	r.writeHosts(tw, now)
	fmt.Fprintf(tw, "\nNGINX (%d)\n", len(r.Nginx))
	for _, n := range r.Nginx {
		fmt.Fprintf(tw, "  %s\troutes=%d\treloads=%d\tconfig=%s\tapplied %s\n", e(n.Instance), n.Routes, n.Reloads, e(short(n.Applied)), when(n.AppliedAt, now))
		if len(n.HTTPAddrs)+len(n.HTTPSAddrs) > 0 {
			fmt.Fprintf(tw, "  \tlistens: http %s; https %s\n", dash(list(n.HTTPAddrs)), dash(list(n.HTTPSAddrs)))
		}
		if n.Error != "" {
			fmt.Fprintf(tw, "  \tlast error: %s (routes: %s)\n", e(redact.String(n.Error)), list(n.ErrorRoutes))
		}
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(tw, "\nPROBLEMS (%d)\n", len(r.Problems))
		for _, p := range r.Problems {
			fmt.Fprintf(tw, "  %s\t%s\n", e(string(p.Severity)), e(p.Error()))
		}
	}
	if len(r.Store) > 0 {
		fmt.Fprintf(tw, "\nUNREADABLE RECORDS (%d)\n", len(r.Store))
		for _, s := range r.Store {
			fmt.Fprintf(tw, "  %s\n", e(redact.String(s)))
		}
	}
	return tw.Flush()
}

// WriteJSON prints the report as indented JSON, with errors redacted and
// the characters encoding/json leaves raw but a terminal interprets (C1
// controls, bidi overrides) escaped.
func (r Report) WriteJSON(w io.Writer) error {
	r.Certs = slices.Clone(r.Certs)
	for i := range r.Certs {
		r.Certs[i].Error = redact.String(r.Certs[i].Error)
	}
	r.Nginx = slices.Clone(r.Nginx)
	for i := range r.Nginx {
		r.Nginx[i].Error = redact.String(r.Nginx[i].Error)
	}
	r.Store = slices.Clone(r.Store)
	for i := range r.Store {
		r.Store[i] = redact.String(r.Store[i])
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	_, err = w.Write(append(escapeJSON(b), '\n'))
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return dash(s)
}

// when is a time for a person: the UTC minute and how far it is from now in
// the largest unit that matters ("in 61d", "5h ago").
func when(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(now)
	if d >= 0 {
		return fmt.Sprintf("%s (in %s)", t.UTC().Format("2006-01-02 15:04"), Ago(d))
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format("2006-01-02 15:04"), Ago(-d))
}

// Ago renders a non-negative duration the way a person reads it: whole
// days from two days up ("61d"), days and hours below ("1d 5h"), then
// hours ("5h"), minutes ("12m") and seconds ("40s"). Units are truncated,
// never rounded up: a certificate that expires in 1d 23h is not "in 2d".
func Ago(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d < 0:
		return "-" + Ago(-d)
	case d >= 2*day:
		return fmt.Sprintf("%dd", d/day)
	case d >= day:
		if h := (d % day) / time.Hour; h > 0 {
			return fmt.Sprintf("1d %dh", h)
		}
		return "1d"
	case d >= time.Hour:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// Errors counts what makes `portico status` exit with code 3: problems of
// severity error (a container or its claim rejected), unreadable records,
// nginx instances whose last render, test or reload failed, and
// certificates whose last order failed. Warnings do not count.
func (r Report) Errors() int {
	n := len(r.Store)
	for _, p := range r.Problems {
		if p.Severity == routing.SeverityError {
			n++
		}
	}
	for _, x := range r.Nginx {
		if x.Error != "" {
			n++
		}
	}
	for _, c := range r.Certs {
		if c.Error != "" {
			n++
		}
	}
	return n
}
