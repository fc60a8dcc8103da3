package routing

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/portico/portico/internal/store"
)

// ParseService validates one container's labels and allow-listed environment
// and returns its intent. It reads nothing but c and opts.
//
// Outcomes:
//   - Any SeverityError problem: the container is rejected alone and the
//     returned Service is the zero value.
//   - No error and len(Service.Hosts) == 0: the container is not proxied
//     (portico.enable=false, or no vhost in any form). Not a problem.
//   - Otherwise the Service is accepted; warnings may accompany it.
//
// Decisions (also in docs/labels.md):
//   - Precedence: portico.* label > com.chameth.* label > nginx-proxy env var.
//     When a lower form is also set to a different value, the winner is used
//     and a warning names the overridden form; the overridden value is not
//     validated. A value that is empty or only whitespace counts as unset (so
//     compose's `${UNSET}` interpolation falls through); an empty label gets a
//     warning.
//   - portico.enable=false ignores the container entirely: no Service and no
//     problems at all. An invalid portico.enable value rejects the container
//     (it is not guessed either way).
//   - Unknown portico.* labels are warnings, with a "did you mean" suggestion
//     when a known label is within edit distance 3 (compared lower-case).
//   - Scalar values (port, protocol, network, booleans, https, hsts) are not
//     trimmed: " 80" is rejected. Keywords are ASCII case-insensitive.
//   - The container name must be a Docker name ([a-zA-Z0-9][a-zA-Z0-9_.-]*,
//     one leading "/" as the Docker API reports it is dropped), since route
//     fields carry it.
//   - Addresses come only from the record's Networks, parsed by net/netip; an
//     unparseable, zoned, unspecified or multicast address is an error.
//   - A container with no address on its network (stopped, or network mode
//     none/host) still yields a Service with Addr "" and Live false, so its
//     vhost stays known and its certificate kept; a running one also gets a
//     warning.
//   - Live = c.Live() && Addr != "": running, not paused, and healthy or
//     without a health check ("starting" and "unhealthy" are not live).
//   - portico.hsts with portico.https=off is ignored with a warning (HSTS is
//     only sent over HTTPS).
//   - LETSENCRYPT_HOST beats ACME_HOST. A certificate name that is not one of
//     the vhosts is kept, with a warning.
func ParseService(c store.Container, opts Options) (Service, []Problem) {
	p := &parser{c: c, name: strings.TrimPrefix(c.Name, "/")}
	svc, ok := p.parse(opts)
	sortProblems(p.problems)
	if !ok {
		return Service{}, p.problems
	}
	return svc, p.problems
}

type parser struct {
	c        store.Container
	name     string
	problems []Problem
	failed   bool
}

func (p *parser) add(sev Severity, label, value, format string, args ...any) {
	if sev == SeverityError {
		p.failed = true
	}
	p.problems = append(p.problems, Problem{
		Severity:    sev,
		ContainerID: p.c.ID,
		Container:   p.name,
		Node:        p.c.Host,
		Label:       label,
		Value:       value,
		Message:     fmt.Sprintf(format, args...),
	})
}

// form is one place a setting may come from: a label or an env var.
type form struct {
	key string
	env bool
}

func label(k string) form { return form{key: k} }
func env(k string) form   { return form{key: k, env: true} }

// setting is the value chosen for one setting and where it came from.
type setting struct {
	key   string
	value string
	ok    bool
}

// lookup returns the highest-precedence non-blank form among forms and warns
// about lower ones that are set to a different value.
func (p *parser) lookup(forms ...form) setting {
	var won setting
	for _, f := range forms {
		m := p.c.Labels
		if f.env {
			m = p.c.Env
		}
		v, present := m[f.key]
		if !present {
			continue
		}
		if strings.TrimSpace(v) == "" {
			if !f.env {
				p.add(SeverityWarning, f.key, v, "empty value ignored")
			}
			continue
		}
		if !won.ok {
			won = setting{key: f.key, value: v, ok: true}
			continue
		}
		if v != won.value {
			p.add(SeverityWarning, f.key, v, "overridden by %s=%q", won.key, won.value)
		}
	}
	return won
}

func (p *parser) parse(opts Options) (Service, bool) {
	if s := p.lookup(label(LabelEnable)); s.ok {
		on, err := parseBool(s.value)
		if err != nil {
			p.add(SeverityError, s.key, s.value, "%v", err)
			return Service{}, false
		}
		if !on {
			p.problems = nil // ignored entirely, even its empty-label warnings
			return Service{}, true
		}
	}
	p.unknownLabels()
	if !validDockerName(p.name) {
		p.add(SeverityError, "", "", "container name is not a valid Docker name")
		return Service{}, false
	}

	vh := p.lookup(label(LabelVhost), label(LegacyVhost), env(EnvVirtualHost))
	if !vh.ok {
		return Service{}, true
	}
	svc := Service{
		ContainerID: p.c.ID,
		Container:   p.name,
		Node:        p.c.Host,
		Protocol:    ProtoHTTP,
		HTTPS:       HTTPSAuto,
	}
	svc.Hosts = p.hosts(vh)
	if len(svc.Hosts) == 0 && !p.failed {
		p.add(SeverityWarning, vh.key, vh.value, "no host names; container is not proxied")
		return Service{}, true
	}

	if s := p.lookup(label(LabelPort), label(LegacyPort), env(EnvVirtualPort)); s.ok {
		port, err := parsePort(s.value)
		if err != nil {
			p.add(SeverityError, s.key, s.value, "%v", err)
		}
		svc.Port = port
	} else {
		svc.Port = defaultPort(p.c.Ports)
	}

	if s := p.lookup(label(LabelProtocol), label(LegacyProtocol), env(EnvVirtualProto)); s.ok {
		proto, err := keyword(s.value, ProtoHTTP, ProtoHTTPS, ProtoGRPC, ProtoGRPCS)
		if err != nil {
			p.add(SeverityError, s.key, s.value, "%v", err)
		}
		svc.Protocol = proto
	}

	if s := p.lookup(label(LabelHTTPS)); s.ok {
		mode, err := keyword(s.value, HTTPSAuto, HTTPSRedirect, HTTPSBoth, HTTPSOff)
		if err != nil {
			p.add(SeverityError, s.key, s.value, "%v", err)
		}
		svc.HTTPS = mode
	}

	if s := p.lookup(label(LabelHSTS)); s.ok {
		age, err := parseHSTS(s.value)
		switch {
		case err != nil:
			p.add(SeverityError, s.key, s.value, "%v", err)
		case age > 0 && svc.HTTPS == HTTPSOff:
			p.add(SeverityWarning, s.key, s.value, "ignored: %s is %s, and HSTS is only sent over HTTPS", LabelHTTPS, HTTPSOff)
		default:
			svc.HSTS = age
		}
	}

	if s := p.lookup(label(LabelDefault), label(LegacyDefault)); s.ok {
		on, err := parseBool(s.value)
		if err != nil {
			p.add(SeverityError, s.key, s.value, "%v", err)
		}
		svc.Default = on
	}

	cert := p.lookup(env(EnvLetsEncryptHost), env(EnvACMEHost))
	switch {
	case svc.HTTPS == HTTPSOff:
		// no certificate is requested
	case cert.ok:
		svc.CertHosts = p.hosts(cert)
		for _, h := range svc.CertHosts {
			if !slices.Contains(svc.Hosts, h) {
				p.add(SeverityWarning, cert.key, cert.value, "certificate name %q is not one of the vhosts", h)
			}
		}
	default:
		svc.CertHosts = slices.Clone(svc.Hosts)
	}

	svc.Network, svc.Addr = p.address(opts, svc.Port)
	if p.failed {
		return Service{}, false
	}
	svc.Live = p.c.Live() && svc.Addr != ""
	if svc.Addr == "" && p.c.State == "running" {
		p.add(SeverityWarning, "", "", "running but has no address on network %q; its vhosts answer 503", svc.Network)
	}
	return svc, true
}

// hosts parses a host list: names separated by commas or ASCII whitespace,
// empty items skipped, duplicates dropped (first position kept). Each bad name
// is its own error.
func (p *parser) hosts(s setting) []string {
	var out []string
	for _, raw := range strings.FieldsFunc(s.value, isHostSep) {
		h, err := normalizeHost(raw)
		if err != nil {
			p.add(SeverityError, s.key, s.value, "host %q: %v", raw, err)
			continue
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

func isHostSep(r rune) bool {
	switch r {
	case ',', ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}

// defaultPort is the single exposed TCP port, else 80. A port exposed on
// several host bindings (0.0.0.0 and ::) counts once.
func defaultPort(ports []store.Port) int {
	port := 0
	for _, pt := range ports {
		if pt.Port < 1 || pt.Port > 65535 || !(pt.Proto == "" || strings.EqualFold(pt.Proto, "tcp")) {
			continue
		}
		if port != 0 && port != pt.Port {
			return 80
		}
		port = pt.Port
	}
	if port == 0 {
		return 80
	}
	return port
}

// address picks the network and builds "ip:port" from a parsed address.
func (p *parser) address(opts Options, port int) (network, addr string) {
	nets := p.c.Networks
	if s := p.lookup(label(LabelNetwork)); s.ok {
		if !validDockerName(s.value) {
			p.add(SeverityError, s.key, s.value, "not a valid Docker network name")
			return "", ""
		}
		if _, on := nets[s.value]; !on && len(nets) > 0 {
			p.add(SeverityError, s.key, s.value, "container is not on this network (it is on %s)", strings.Join(sortedKeys(nets), ", "))
			return "", ""
		}
		network = s.value
	} else if _, on := nets[opts.Network]; on && opts.Network != "" {
		network = opts.Network
	} else {
		switch len(nets) {
		case 0:
			return "", "" // no network at all: nothing to reach
		case 1:
			network = sortedKeys(nets)[0]
		default:
			p.add(SeverityError, LabelNetwork, "", "container is on several networks (%s) and none is the proxy's; set %s", strings.Join(sortedKeys(nets), ", "), LabelNetwork)
			return "", ""
		}
		if !validDockerName(network) {
			p.add(SeverityError, "", "", "network name %q in the record is not a valid Docker network name", network)
			return "", ""
		}
	}

	n := nets[network]
	var ip netip.Addr
	for _, a := range []struct{ fam, s string }{{"IPv4", n.IPv4}, {"IPv6", n.IPv6}} {
		if a.s == "" {
			continue
		}
		parsed, err := netip.ParseAddr(a.s)
		ok := err == nil && parsed.Zone() == "" && !parsed.IsUnspecified() && !parsed.IsMulticast() &&
			(a.fam == "IPv4") == parsed.Is4()
		if !ok {
			p.add(SeverityError, "", "", "network %q: %s address %q in the record is not a usable unicast %s address", network, a.fam, a.s, a.fam)
			return network, ""
		}
		if !ip.IsValid() {
			ip = parsed // IPv4 preferred
		}
	}
	if !ip.IsValid() || port == 0 {
		return network, ""
	}
	return network, netip.AddrPortFrom(ip, uint16(port)).String()
}

// unknownLabels warns about portico.* labels Portico does not know.
func (p *parser) unknownLabels() {
	for k, v := range p.c.Labels {
		if !strings.HasPrefix(k, LabelPrefix) || slices.Contains(KnownLabels, k) {
			continue
		}
		if s := suggest(k); s != "" {
			p.add(SeverityWarning, k, v, "unknown label; did you mean %s?", s)
		} else {
			p.add(SeverityWarning, k, v, "unknown label")
		}
	}
}

// suggest returns the known label closest to k within edit distance 3.
func suggest(k string) string {
	if len(k) > 64 {
		return ""
	}
	k = strings.ToLower(k)
	best, bestD := "", 4
	for _, known := range KnownLabels {
		if d := editDistance(k, known); d < bestD {
			best, bestD = known, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, by bytes.
func editDistance(a, b string) int {
	var bufA, bufB [32]int // known labels are short: no allocation
	prev, cur := bufA[:0], bufB[:0]
	if len(b)+1 > len(bufA) {
		prev, cur = make([]int, 0, len(b)+1), make([]int, 0, len(b)+1)
	}
	prev, cur = prev[:len(b)+1], cur[:len(b)+1]
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// sortProblems orders problems by container name, node, label and message,
// then by the remaining fields so the order is total.
func sortProblems(ps []Problem) {
	slices.SortFunc(ps, func(a, b Problem) int {
		return cmp.Or(
			cmp.Compare(a.Container, b.Container),
			cmp.Compare(a.Node, b.Node),
			cmp.Compare(a.Label, b.Label),
			cmp.Compare(a.Message, b.Message),
			cmp.Compare(a.ContainerID, b.ContainerID),
			cmp.Compare(a.Severity, b.Severity),
			cmp.Compare(a.Value, b.Value),
		)
	})
}
