package routing

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/portico/portico/internal/store"
)

// ctr builds a running container on network "proxy" at 172.18.0.2 with the
// given labels; mods adjust the rest.
func ctr(name string, labels map[string]string, mods ...func(*store.Container)) store.Container {
	c := store.Container{
		ID:       "id-" + name,
		Name:     name,
		Host:     "node1",
		Image:    "img",
		Labels:   labels,
		Networks: map[string]store.Network{"proxy": {IPv4: "172.18.0.2"}},
		State:    "running",
	}
	for _, m := range mods {
		m(&c)
	}
	return c
}

func withEnv(kv ...string) func(*store.Container) {
	return func(c *store.Container) {
		c.Env = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			c.Env[kv[i]] = kv[i+1]
		}
	}
}

func withIP(ip string) func(*store.Container) {
	return func(c *store.Container) { c.Networks = map[string]store.Network{"proxy": {IPv4: ip}} }
}

func withNets(n map[string]store.Network) func(*store.Container) {
	return func(c *store.Container) { c.Networks = n }
}

func withState(state, health string) func(*store.Container) {
	return func(c *store.Container) { c.State, c.Health = state, health }
}

// isStopping marks a running container as being stopped (Docker sent its
// stop signal; it has not exited).
func isStopping(c *store.Container) { c.Stopping = true }

func withPorts(ps ...store.Port) func(*store.Container) {
	return func(c *store.Container) { c.Ports = ps }
}

func withNode(node string) func(*store.Container) {
	return func(c *store.Container) { c.Host = node }
}

func vhost(v string) map[string]string { return map[string]string{LabelVhost: v} }

// labels builds a label map from key, value pairs.
func labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// wantProblem matches a Problem by severity, label and a message substring.
type wantProblem struct {
	sev   Severity
	label string
	msg   string
}

func (w wantProblem) String() string { return fmt.Sprintf("%s %s %q", w.sev, w.label, w.msg) }

// checkProblems asserts that got holds exactly one match per want and nothing
// else.
func checkProblems(t *testing.T, got []Problem, want []wantProblem) {
	t.Helper()
	used := make([]bool, len(got))
	for _, w := range want {
		found := false
		for i, p := range got {
			if !used[i] && p.Severity == w.sev && p.Label == w.label && strings.Contains(p.Message, w.msg) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("missing problem %v", w)
		}
	}
	for i, p := range got {
		if !used[i] {
			t.Errorf("unexpected problem %s %v", p.Severity, p.Error())
		}
	}
}

// Strict patterns every field nginx may render must match.
var (
	safeHost     = regexp.MustCompile(strings.ReplaceAll(`^((\*\.)?N|N\.\*)$`, "N", `[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*`))
	safeProtocol = regexp.MustCompile(`^(http|https|grpc|grpcs|fastcgi|uwsgi)$`)
	safeRoot     = regexp.MustCompile(`^(/|(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+)$`)
	safeHTTPS    = regexp.MustCompile(`^(auto|redirect|both|off)$`)
	safeAddr     = regexp.MustCompile(`^([0-9]{1,3}(\.[0-9]{1,3}){3}|\[[0-9a-f:.]+\]):[1-9][0-9]{0,4}$`)
	safeName     = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	// safePath: a path prefix or destination, "" for none (Dest).
	safePath = regexp.MustCompile(`^(/[A-Za-z0-9._~!&()*+,=:@-]*){0,128}$`)
)

// unsafeFields lists every rendered field of r that fails its strict pattern.
func unsafeFields(r Result) []string {
	var bad []string
	host := func(where, h string) {
		if !safeHost.MatchString(h) || len(h) > 253 {
			bad = append(bad, fmt.Sprintf("%s host %q", where, h))
		}
	}
	for _, s := range r.Services {
		where := "service " + s.Container
		if !safeName.MatchString(s.Container) {
			bad = append(bad, fmt.Sprintf("%s name %q", where, s.Container))
		}
		if len(s.Hosts) == 0 {
			bad = append(bad, where+" has no hosts")
		}
		for _, h := range s.Hosts {
			host(where, h)
		}
		for _, h := range s.CertHosts {
			host(where+" cert", h)
			if IsTrailingWildcard(h) {
				bad = append(bad, fmt.Sprintf("%s cert host %q: a trailing wildcard", where, h))
			}
		}
		if s.Port < 1 || s.Port > 65535 {
			bad = append(bad, fmt.Sprintf("%s port %d", where, s.Port))
		}
		if !safeProtocol.MatchString(s.Protocol) {
			bad = append(bad, fmt.Sprintf("%s protocol %q", where, s.Protocol))
		}
		if !safeHTTPS.MatchString(s.HTTPS) {
			bad = append(bad, fmt.Sprintf("%s https %q", where, s.HTTPS))
		}
		if (s.Root != "") != (s.Protocol == ProtoFastCGI) || s.Root != "" && (!safeRoot.MatchString(s.Root) || len(s.Root) > 255) {
			bad = append(bad, fmt.Sprintf("%s root %q (protocol %s)", where, s.Root, s.Protocol))
		}
		if s.HSTS.MaxAge < 0 {
			bad = append(bad, fmt.Sprintf("%s hsts %d", where, s.HSTS.MaxAge))
		}
		if s.Network != "" && !safeName.MatchString(s.Network) {
			bad = append(bad, fmt.Sprintf("%s network %q", where, s.Network))
		}
		if s.Addr != "" && !safeAddr.MatchString(s.Addr) {
			bad = append(bad, fmt.Sprintf("%s addr %q", where, s.Addr))
		}
		if s.Live && s.Addr == "" {
			bad = append(bad, where+" live without address")
		}
		if s.HTTPS == HTTPSOff && len(s.CertHosts) > 0 {
			bad = append(bad, where+" https off with cert hosts")
		}
		if s.Path == "/" || !safePath.MatchString(s.Path) || !safePath.MatchString(s.Dest) || len(s.Path) > 256 || len(s.Dest) > 256 ||
			strings.Contains(s.Path, "..") || strings.Contains(s.Dest, "..") {
			bad = append(bad, fmt.Sprintf("%s path %q dest %q", where, s.Path, s.Dest))
		}
	}
	for _, rt := range r.Routes {
		where := "route " + rt.Host
		host("route", rt.Host)
		bad = append(bad, unsafeSite(where, rt.Site)...)
		if !safeProtocol.MatchString(rt.Protocol) {
			bad = append(bad, fmt.Sprintf("%s protocol %q", where, rt.Protocol))
		}
		if !safeHTTPS.MatchString(rt.HTTPS) {
			bad = append(bad, fmt.Sprintf("%s https %q", where, rt.HTTPS))
		}
		if (rt.Root != "") != (rt.Protocol == ProtoFastCGI) || rt.Root != "" && !safeRoot.MatchString(rt.Root) {
			bad = append(bad, fmt.Sprintf("%s root %q (protocol %s)", where, rt.Root, rt.Protocol))
		}
		if rt.HSTS.MaxAge < 0 {
			bad = append(bad, fmt.Sprintf("%s hsts %d", where, rt.HSTS.MaxAge))
		}
		for _, u := range rt.Upstreams {
			if !safeAddr.MatchString(u) {
				bad = append(bad, fmt.Sprintf("%s upstream %q", where, u))
			}
		}
		for _, n := range rt.Containers {
			if !safeName.MatchString(n) {
				bad = append(bad, fmt.Sprintf("%s container %q", where, n))
			}
		}
		for _, p := range rt.Paths {
			if p.Path == "" || p.Path == "/" || !safePath.MatchString(p.Path) || !safePath.MatchString(p.Dest) || !safeProtocol.MatchString(p.Protocol) {
				bad = append(bad, fmt.Sprintf("%s path %q dest %q protocol %q", where, p.Path, p.Dest, p.Protocol))
			}
			for _, u := range p.Upstreams {
				if !safeAddr.MatchString(u) {
					bad = append(bad, fmt.Sprintf("%s path %s upstream %q", where, p.Path, u))
				}
			}
		}
	}
	return bad
}
