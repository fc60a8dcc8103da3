package explain

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/portico/portico/internal/certs"
	"github.com/portico/portico/internal/redact"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// snapshot is the decoded store.
type snapshot struct {
	containers []store.Container
	keyOf      map[string]string // node+"\x00"+id -> key
	bundles    map[string]store.CertBundle
	wanted     []store.WantedCert
	states     []store.CertState
	nginx      []store.NginxStatus
	unreadable []string
}

func readSnapshot(in Input) snapshot {
	s := snapshot{keyOf: map[string]string{}, bundles: map[string]store.CertBundle{}}
	k := in.Keys
	for _, key := range slices.Sorted(maps.Keys(in.Entries)) {
		e := in.Entries[key]
		var err error
		switch {
		case strings.HasPrefix(key, k.Containers()):
			var c store.Container
			if c, err = store.DecodeContainerEntry(key, e); err == nil {
				if c.Rejected != "" {
					s.unreadable = append(s.unreadable, fmt.Sprintf("key %q: container %q on node %q was rejected by the reporter, so its names are unknown: %s",
						key, c.Name, c.Host, redact.String(routing.Clip(c.Rejected, 256))))
				}
				s.containers = append(s.containers, c)
				s.keyOf[c.Host+"\x00"+c.ID] = key
			}
		case strings.HasPrefix(key, k.NginxStatuses()):
			var n store.NginxStatus
			if err = store.Decode(key, e.Value, &n); err == nil {
				s.nginx = append(s.nginx, n)
			}
		case strings.HasPrefix(key, k.CertData()):
			var b store.CertBundle
			if err = store.Decode(key, e.Value, &b); err == nil {
				s.bundles[key] = b
			}
		case strings.HasPrefix(key, k.CertStates()):
			var st store.CertState
			if err = store.Decode(key, e.Value, &st); err == nil {
				s.states = append(s.states, st)
			}
		case key == k.CertsWanted():
			err = store.Decode(key, e.Value, &s.wanted)
		}
		if err != nil {
			s.unreadable = append(s.unreadable, redact.String(err.Error()))
		}
	}
	return s
}

// claims lists the containers that claim host, exactly or by a wildcard,
// sorted by container name, node and ID.
func claims(s snapshot, res routing.Result, routes []routing.Route, opts routing.Options, host string) []Claim {
	svcs := map[string]routing.Service{}
	for _, v := range res.Services {
		svcs[v.Node+"\x00"+v.ContainerID] = v
	}
	probs := map[string][]routing.Problem{}
	for _, p := range res.Problems {
		probs[p.Node+"\x00"+p.ContainerID] = append(probs[p.Node+"\x00"+p.ContainerID], p)
	}
	byHost := map[string]*routing.Route{}
	for i := range routes {
		byHost[routes[i].Host] = &routes[i]
	}
	out := []Claim{}
	for _, c := range s.containers {
		id := c.Host + "\x00" + c.ID
		svc, parsed := svcs[id]
		names := svc.Hosts
		if !parsed {
			names = rawHosts(c)
		}
		i := slices.IndexFunc(names, func(n string) bool { return covers(n, host) })
		if i < 0 {
			continue
		}
		cl := Claim{Key: s.keyOf[id], Container: strings.TrimPrefix(c.Name, "/"), Node: c.Host, ID: c.ID, Image: c.Image,
			State: c.State, Health: c.Health, Labels: porticoLabels(c.Labels), Env: c.Env, Name: names[i], Problems: probs[id]}
		errs := errorsOf(cl.Problems)
		switch {
		case parsed:
			cl.Settings = &Settings{Hosts: svc.Hosts, CertHosts: svc.CertHosts, Port: svc.Port, Protocol: svc.Protocol, Network: svc.Network,
				Addr: svc.Addr, Live: svc.Live, HTTPS: svc.HTTPS, HSTS: svc.HSTS.Header(), Default: svc.Default}
			r := byHost[cl.Name]
			switch {
			case r == nil:
				cl.Outcome, cl.Reason = ClaimDropped, "the nginx stage's route check refused the route"
			case accepted(r, svc):
				cl.Outcome = ClaimAccepted
				if !svc.Live {
					cl.Reason = "accepted, but not live (" + notLive(c, svc) + "): not an upstream"
				}
			default:
				cl.Outcome, cl.Reason = ClaimConflict, conflictReason(cl.Problems, cl.Name)
			}
		case !opts.Allowed.Allows(c.Host, cl.Name):
			cl.Outcome = ClaimNotAllowed
			cl.Reason = fmt.Sprintf("--allowed-domains does not let node %q claim %q", c.Host, cl.Name)
		case len(errs) > 0:
			cl.Outcome, cl.Reason = ClaimRejected, errs[0].Error()
		default:
			cl.Outcome, cl.Reason = ClaimIgnored, routing.LabelEnable+"=false: the container is ignored"
		}
		out = append(out, cl)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.Container+"\x00"+a.Node+"\x00"+a.ID < b.Container+"\x00"+b.Node+"\x00"+b.ID
	})
	return out
}

// claimWhy adds the claims' part of why the name is not served.
func claimWhy(x *Explanation, route *routing.Route, routeErrs []error) {
	if len(x.Claims) == 0 {
		msg := "no claim: no container claims " + x.Host
		if len(x.Unreadable) > 0 {
			msg += fmt.Sprintf(" (but %d record(s) could not be read; see below)", len(x.Unreadable))
		}
		x.Why = append(x.Why, msg)
		return
	}
	for _, c := range x.Claims {
		who := fmt.Sprintf("container %q on node %q", c.Container, c.Node)
		switch c.Outcome {
		case ClaimNotAllowed:
			x.Why = append(x.Why, "not allowed: "+who+": "+c.Reason)
		case ClaimRejected:
			x.Why = append(x.Why, "rejected: "+c.Reason)
		case ClaimConflict:
			x.Why = append(x.Why, "conflict: "+who+": "+c.Reason)
		case ClaimIgnored:
			x.Why = append(x.Why, "ignored: "+who+": "+c.Reason)
		case ClaimDropped:
			for _, err := range routeErrs {
				if strings.Contains(err.Error(), fmt.Sprintf("%q", c.Name)) {
					x.Why = append(x.Why, "dropped: route "+c.Name+": "+err.Error())
				}
			}
		}
	}
	if route == nil && len(x.Why) == 0 {
		x.Why = append(x.Why, "no route: no claim on "+x.Host+" was accepted")
	}
}

// accepted reports whether routing accepted svc's claim on r (as
// certs.ServiceNames decides it): the route lists the container and has its
// settings.
func accepted(r *routing.Route, svc routing.Service) bool {
	return r.Claimed(svc)
}

// conflictReason is the routing problem that rejected the claim on name.
func conflictReason(ps []routing.Problem, name string) string {
	for _, p := range ps {
		if p.Severity == routing.SeverityError && p.Value == name {
			return p.Message
		}
	}
	return "another container claimed this vhost first with other settings"
}

func notLive(c store.Container, svc routing.Service) string {
	switch {
	case svc.Addr == "":
		return fmt.Sprintf("no address on network %q", svc.Network)
	case c.Stopping && c.State == "running":
		return "stopping: Docker sent its stop signal and it has not exited yet"
	case c.Health != "":
		return fmt.Sprintf("state %s, health %s", c.State, c.Health)
	}
	return "state " + c.State
}

func errorsOf(ps []routing.Problem) []routing.Problem {
	var out []routing.Problem
	for _, p := range ps {
		if p.Severity == routing.SeverityError {
			out = append(out, p)
		}
	}
	return out
}

// rawHosts are the names a container that routing did not accept asks for,
// read from its vhost label in the order routing reads them: what it
// claims, even when the claim is refused.
func rawHosts(c store.Container) []string {
	v := ""
	for _, f := range []struct {
		m   map[string]string
		key string
	}{{c.Labels, routing.LabelVhost}, {c.Labels, routing.LegacyVhost}, {c.Env, routing.EnvVirtualHost}} {
		if strings.TrimSpace(f.m[f.key]) != "" {
			v = f.m[f.key]
			break
		}
	}
	if len(v) > 64<<10 {
		v = v[:64<<10]
	}
	var out []string
	for _, raw := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }) {
		if n, err := certs.NormalizeName(raw); err == nil {
			out = append(out, n)
		} else {
			out = append(out, strings.ToLower(raw))
		}
	}
	return out
}

// porticoLabels keeps the labels Portico reads (the record may also hold
// the reporter's label-filter keys).
func porticoLabels(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if routing.IsPorticoLabel(k) {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
