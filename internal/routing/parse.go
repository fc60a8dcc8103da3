package routing

import (
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
//     unparseable or zoned address, or one that points at the proxy host or
//     at no single host, is an error (upstreamAddr).
//   - A container with no address on its network (stopped, or network mode
//     none/host) still yields a Service with Addr "" and Live false, so its
//     vhost stays known and its certificate kept; a running one also gets a
//     warning.
//   - Live = c.Live() && Addr != "": running, not paused, not stopping (the
//     reporter saw Docker send the stop signal), and healthy or without a
//     health check ("starting" and "unhealthy" are not live).
//   - portico.hsts (or HSTS) with https off is ignored with a warning (HSTS
//     is only sent over HTTPS).
//   - nginx-proxy's HTTPS_METHOD and HSTS are the env forms of portico.https
//     and portico.hsts (httpsMode, parseHSTS); variables of nginx-proxy and
//     acme-companion Portico does not read are warnings (ignoredEnv).
//   - LETSENCRYPT_HOST beats ACME_HOST. A certificate name that is not one of
//     the container's own vhosts is an error: a container cannot ask for a
//     certificate for a name it does not route.
//   - Bounds (limits.go): a host list over MaxListBytes or any other value
//     over MaxValueBytes is an error (the lower forms are not used instead);
//     more than MaxNames distinct names in a list is an error; at most
//     MaxProblems problems are recorded, plus one summary counting the rest;
//     a problem holds only the offending item, cut to 128 bytes.
//   - Options.Allowed, when set, limits the names a node's containers may
//     claim (allow.go); a name outside it rejects the container.
func ParseService(c store.Container, opts Options) (Service, []Problem) {
	p := &parser{c: c, name: strings.TrimPrefix(c.Name, "/")}
	svc, ok := p.parse(opts)
	probs := p.finish()
	if !ok || p.failed {
		return Service{}, probs
	}
	return svc, probs
}

type parser struct {
	c        store.Container
	name     string
	problems []Problem
	failed   bool
	// dropped counts problems past the recording bound; droppedErr is set
	// when one of them was an error.
	dropped    int
	droppedErr bool
	errors     int // recorded
	warnings   int // recorded
}

func (p *parser) add(sev Severity, label, value, format string, args ...any) {
	if sev == SeverityError {
		p.failed = true
	}
	// limitProblems keeps MaxProblems, errors first: past that many of a
	// severity, only count.
	n := &p.warnings
	if sev == SeverityError {
		n = &p.errors
	}
	if *n < MaxProblems {
		*n++
	} else {
		p.dropped++
		p.droppedErr = p.droppedErr || sev == SeverityError
		return
	}
	p.problems = append(p.problems, newProblem(sev, p.c.ID, p.name, p.c.Host, label, value, fmt.Sprintf(format, args...)))
}

// finish sorts and bounds the problems, folding any dropped in add.
func (p *parser) finish() []Problem {
	if p.dropped > 0 {
		sev := SeverityWarning
		if p.droppedErr {
			sev = SeverityError
		}
		sum := newProblem(sev, p.c.ID, p.name, p.c.Host, "", "", "")
		sum.More = p.dropped
		p.problems = append(p.problems, sum)
	}
	sortProblems(p.problems)
	return limitProblems(p.problems)
}

// form is one place a setting may come from: a label or an env var.
type form struct {
	key string
	env bool
	// same, when set, says whether this form's value v means what the
	// winning form's value w means, where the two forms speak different
	// vocabularies (HTTPS_METHOD=noredirect is portico.https=both): only
	// a value that means something else is warned about.
	same func(v, w string) bool
}

func label(k string) form { return form{key: k} }
func env(k string) form   { return form{key: k, env: true} }

// envMeaning is an env form whose values are compared by meaning.
func envMeaning(k string, same func(v, w string) bool) form {
	return form{key: k, env: true, same: same}
}

// sameHTTPS: HTTPS_METHOD v means portico.https w.
func sameHTTPS(v, w string) bool {
	m, ok := map[string]string{"redirect": HTTPSRedirect, "noredirect": HTTPSBoth, "nohttps": HTTPSOff}[asciiLower(v)]
	return ok && m == asciiLower(w)
}

// sameHSTS: two HSTS values that parse to the same header.
func sameHSTS(v, w string) bool {
	a, err1 := parseHSTS(v)
	b, err2 := parseHSTS(w)
	return err1 == nil && err2 == nil && a == b
}

// setting is the value chosen for one setting and where it came from.
type setting struct {
	key   string
	value string
	ok    bool
}

// lookup returns the highest-precedence non-blank form among forms and warns
// about lower ones that are set to a different value. A winner over its
// length limit is an error, and lookup then returns no setting at all.
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
			if limit := valueLimit(f.key); len(v) > limit {
				// Rejects the container; a lower form is not used instead.
				p.add(SeverityError, f.key, v, "value is %d bytes, over the limit of %d", len(v), limit)
				return setting{}
			}
			won = setting{key: f.key, value: v, ok: true}
			continue
		}
		if v != won.value && (f.same == nil || !f.same(v, won.value)) {
			p.add(SeverityWarning, f.key, v, "overridden by %s=%q", won.key, Clip(won.value, maxItemBytes))
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
	p.ignoredEnv()
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
	for _, h := range svc.Hosts {
		if !opts.Allowed.Allows(p.c.Host, h) {
			p.add(SeverityError, vh.key, h, "host name not allowed for node %q (--allowed-domains)", Clip(p.c.Host, maxItemBytes))
		}
	}
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

	if s := p.lookup(label(LabelHTTPS), envMeaning(EnvHTTPSMethod, sameHTTPS)); s.ok {
		svc.HTTPS = p.httpsMode(s)
	}

	if s := p.lookup(label(LabelHSTS), envMeaning(EnvHSTS, sameHSTS)); s.ok {
		h, err := parseHSTS(s.value)
		switch {
		case err != nil:
			p.add(SeverityError, s.key, s.value, "%v", err)
		case h.On() && svc.HTTPS == HTTPSOff:
			p.add(SeverityWarning, s.key, s.value, "ignored: https is %s, and HSTS is only sent over HTTPS", HTTPSOff)
		default:
			svc.HSTS = h
		}
	}

	if s := p.lookup(label(LabelDefault), label(LegacyDefault)); s.ok {
		on, err := parseBool(s.value)
		if err != nil {
			p.add(SeverityError, s.key, s.value, "%v", err)
		}
		svc.Default = on
	}

	svc.Site = p.siteOptions()

	cert := p.lookup(env(EnvLetsEncryptHost), env(EnvACMEHost))
	switch {
	case svc.HTTPS == HTTPSOff:
		// no certificate is requested
	case cert.ok:
		var raws []string
		svc.CertHosts, raws = p.hostItems(cert)
		own := make(map[string]bool, len(svc.Hosts))
		for _, h := range svc.Hosts {
			own[h] = true
		}
		for i, h := range svc.CertHosts {
			if !own[h] {
				p.add(SeverityError, cert.key, raws[i], "certificate name %q is not one of this container's vhosts", Clip(h, maxItemBytes))
			}
		}
	default:
		svc.CertHosts = slices.Clone(svc.Hosts)
	}

	p.reach(opts, &svc)
	if p.failed {
		return Service{}, false
	}
	svc.Live = p.c.Live() && svc.Addr != ""
	if svc.Addr == "" && p.c.State == "running" && svc.Reach == "" {
		p.add(SeverityWarning, "", "", "running but has no address on network %q; its vhosts answer 503", svc.Network)
	}
	return svc, true
}

// hosts parses a host list: names separated by commas or ASCII whitespace,
// empty items skipped, duplicates dropped (first position kept). Each bad name
// is its own error, naming that item. More than MaxNames distinct names, or
// more than MaxProblems bad ones, is one error for the list, and the rest of
// the list is not read. The work is linear in the value (duplicates are found
// with a map).
func (p *parser) hosts(s setting) []string {
	out, _ := p.hostItems(s)
	return out
}

// hostItems is hosts, also returning the item each name came from.
func (p *parser) hostItems(s setting) (out, raws []string) {
	seen := map[string]bool{}
	bad := 0
	for raw := range strings.FieldsFuncSeq(s.value, isHostSep) {
		if bad == MaxProblems {
			// The container is rejected and no more errors would be
			// recorded: the rest is not worth the IDNA work.
			p.add(SeverityError, s.key, s.value, "more than %d invalid host names; the rest of the list was not checked", MaxProblems)
			break
		}
		h, err := normalizeHost(raw)
		if err != nil {
			bad++
			p.add(SeverityError, s.key, raw, "host name rejected: %v", err)
			continue
		}
		if seen[h] {
			continue
		}
		if len(out) == MaxNames {
			p.add(SeverityError, s.key, s.value, "more than %d host names (Let's Encrypt's limit per certificate)", MaxNames)
			break
		}
		seen[h] = true
		out, raws = append(out, h), append(raws, raw)
	}
	return out, raws
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
			p.add(SeverityError, s.key, s.value, "container is not on this network (it is on %s)", netList(nets))
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
			p.add(SeverityError, LabelNetwork, "", "container is on several networks (%s) and none is the proxy's; set %s", netList(nets), LabelNetwork)
			return "", ""
		}
		if !validDockerName(network) {
			p.add(SeverityError, "", "", "network name %q in the record is not a valid Docker network name", Clip(network, maxItemBytes))
			return "", ""
		}
	}

	n := nets[network]
	var ip netip.Addr
	for _, a := range []struct{ fam, s string }{{"IPv4", n.IPv4}, {"IPv6", n.IPv6}} {
		if a.s == "" {
			continue
		}
		parsed, why := upstreamAddr(a.fam, a.s, opts)
		if why != "" {
			p.add(SeverityError, "", "", "network %q: %s address %q in the record is not a usable unicast %s address: %s",
				network, a.fam, Clip(a.s, maxItemBytes), a.fam, why)
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

// netList names a record's networks for a message, bounded.
func netList(nets map[string]store.Network) string {
	return Clip(strings.Join(sortedKeys(nets), ", "), 4*maxItemBytes)
}

// unknownLabels warns about portico.* labels Portico does not know, in key
// order so that which ones are recorded under the problem bound is stable.
func (p *parser) unknownLabels() {
	var unknown []string
	for k := range p.c.Labels {
		if strings.HasPrefix(k, LabelPrefix) && !slices.Contains(KnownLabels, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		v := p.c.Labels[k]
		if s := suggest(k); s != "" {
			p.add(SeverityWarning, k, v, "unknown label; did you mean %s?", s)
		} else {
			p.add(SeverityWarning, k, v, "unknown label")
		}
	}
}

// httpsMode reads portico.https or nginx-proxy's HTTPS_METHOD. The env
// form's values map onto portico.https: redirect -> redirect, noredirect ->
// both, nohttps -> off; nohttp (HTTPS only, no plain HTTP at all) has no
// Portico equivalent and becomes redirect with a warning. An invalid value
// is an error.
func (p *parser) httpsMode(s setting) string {
	if s.key == EnvHTTPSMethod {
		switch asciiLower(s.value) {
		case "redirect":
			return HTTPSRedirect
		case "noredirect":
			return HTTPSBoth
		case "nohttps":
			return HTTPSOff
		case "nohttp":
			p.add(SeverityWarning, s.key, s.value, "nohttp is not supported: plain HTTP redirects to HTTPS instead (as redirect)")
			return HTTPSRedirect
		}
		p.add(SeverityError, s.key, s.value, "want one of redirect, noredirect, nohttps")
		return ""
	}
	mode, err := keyword(s.value, HTTPSAuto, HTTPSRedirect, HTTPSBoth, HTTPSOff)
	if err != nil {
		p.add(SeverityError, s.key, s.value, "%v", err)
	}
	return mode
}

// ignoredEnv warns about nginx-proxy and acme-companion variables Portico
// does not read (IgnoredEnv, SecretEnv), in name order. A blank one is
// unset, as for the variables Portico reads.
func (p *parser) ignoredEnv() {
	var set []string
	for k, v := range p.c.Env {
		if strings.TrimSpace(v) != "" && (slices.Contains(IgnoredEnv, k) || slices.Contains(SecretEnv, k)) {
			set = append(set, k)
		}
	}
	slices.Sort(set)
	for _, k := range set {
		p.add(SeverityWarning, k, p.c.Env[k], "nginx-proxy/acme-companion variable not supported by Portico; it has no effect (docs/labels.md)")
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
