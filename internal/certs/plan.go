// Package certs is the certificate stage: it derives the certificates the
// containers need, obtains them from the local CA or an ACME issuer, stores
// them in etcd and renews them. The decisions (which certificates, which
// issuer, when to renew, when to retry) are pure functions in plan.go,
// renew.go and domains.go; stage.go is the I/O around them.
package certs

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/portico/portico/internal/certs/localca"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// Issuer choices for Config.Issuer and PlanOptions.Issuer.
const (
	IssuerAuto  = ""      // local CA for local-only names, ACME for the rest
	IssuerLocal = "local" // local CA for everything
	IssuerACME  = "acme"  // ACME for everything
)

// MaxNames is the most names one certificate may carry (Let's Encrypt's
// limit); a larger set is refused with a warning.
const MaxNames = 100

// LocalSuffixes are the domains no public CA will certify; names under them
// (or equal to them) go to the local CA in IssuerAuto mode.
// They are the local CA's own list: its root may always certify them.
var LocalSuffixes = localca.LocalSuffixes()

// PlanOptions are the settings the planning functions need.
type PlanOptions struct {
	// Issuer is IssuerAuto, IssuerLocal or IssuerACME.
	Issuer string
	// WildcardDomains are normalised domains (see NormalizeName) whose
	// direct subdomains fold into one *.domain certificate.
	WildcardDomains []string
}

// NameSet is one requester's certificate names; Names[0] is the subject.
type NameSet struct {
	Names []string
	// Owner names the requester in warnings, e.g. `container "web" on node
	// "h1"`.
	Owner string
	// Routed are the names the requester itself routes (its accepted vhost
	// claims). Unless Unrestricted, names outside Routed are dropped with a
	// warning: a container never certifies a name it does not serve, and so
	// never adds a name that another container routes to that container's
	// certificate.
	Routed []string
	// Unrestricted is set for operator input (the domains file), which
	// routes nothing and may name anything.
	Unrestricted bool
}

// UnrestrictedSets wraps operator-written name sets (the domains file).
func UnrestrictedSets(sets [][]string, owner string) []NameSet {
	out := make([]NameSet, 0, len(sets))
	for _, s := range sets {
		out = append(out, NameSet{Names: s, Owner: owner, Unrestricted: true})
	}
	return out
}

// ServiceNames returns the name sets the services of res want certified:
// each service's CertHosts, skipping services with HTTPS off or nothing to
// certify. Each set is restricted to the vhosts whose claim routing accepted
// for that service; a rejected claim certifies nothing. A claim is accepted
// when the route lists the container and the service has the route's
// settings (routing rejects a claim whose protocol, HTTPS mode or HSTS
// differ from the first claimant's), which also tells apart two containers
// of the same name on different Docker hosts.
func ServiceNames(res routing.Result) []NameSet {
	routes := make(map[string]*routing.Route, len(res.Routes))
	for i := range res.Routes {
		routes[res.Routes[i].Host] = &res.Routes[i]
	}
	var sets []NameSet
	for _, s := range res.Services {
		if s.HTTPS == routing.HTTPSOff || len(s.CertHosts) == 0 {
			continue
		}
		ns := NameSet{Names: s.CertHosts, Owner: fmt.Sprintf("container %q on node %q", s.Container, s.Node), Routed: []string{}}
		for _, h := range s.Hosts {
			if r := routes[h]; r != nil && accepted(r, s) && r.Site.Redirect.Host == "" {
				ns.Routed = append(ns.Routed, h)
			}
		}
		// portico.redirect-from names are served over HTTPS too, to
		// redirect: they are on the same certificate, after the vhosts.
		for _, h := range s.Site.Redirect.From {
			if r := routes[h]; r != nil && accepted(r, s) && r.Site.Redirect.Host == s.Hosts[0] {
				ns.Routed = append(ns.Routed, h)
			}
		}
		sets = append(sets, ns)
	}
	return sets
}

// accepted reports whether routing accepted s's claim on r.
func accepted(r *routing.Route, s routing.Service) bool {
	return r.Claimed(s)
}

// Plan turns name sets into the certificates to obtain, sorted by Primary.
// The rules, documented in docs/certs.md:
//   - a restricted set keeps only the names its requester routes;
//   - a name exactly one label below a wildcard domain moves into that
//     domain's *.domain certificate; the set's next name becomes its subject;
//   - sets with the same subject merge into one certificate with the union
//     of their names, unless that would change the issuer the certificate
//     gets: when the sets for one subject disagree on the issuer, the sets
//     that agree with the subject's own issuer (ChooseIssuer of the subject
//     alone) keep it, and each other set goes on without that subject (its
//     next name becomes its subject), so a merge never changes an existing
//     certificate's issuer;
//   - certificates with the same name set collapse into one, whose subject
//     is the alphabetically first of their subjects;
//   - the same name may appear in several certificates;
//   - a certificate with a name under a local suffix goes to the local CA
//     (IssuerAuto), and every certificate does with IssuerLocal.
//
// It returns warnings for names it dropped, merges it refused and sets it
// had to refuse (over MaxNames names).
func Plan(sets []NameSet, opts PlanOptions) ([]store.WantedCert, []string) {
	var warnings []string
	type pending struct {
		names []string // names[0] the subject
		owner string
	}
	var queue []pending
	byPrimary := map[string]map[string]bool{}
	add := func(primary string, names []string) {
		m := byPrimary[primary]
		if m == nil {
			m = map[string]bool{}
			byPrimary[primary] = m
		}
		for _, n := range names {
			m[n] = true
		}
	}
	for _, set := range sets {
		var routed map[string]bool
		if !set.Unrestricted {
			routed = make(map[string]bool, len(set.Routed))
			for _, n := range set.Routed {
				routed[n] = true
			}
		}
		seen := make(map[string]bool, len(set.Names))
		var rest []string
		for _, n := range set.Names {
			if seen[n] {
				continue
			}
			seen[n] = true
			if routed != nil && !routed[n] {
				warnings = append(warnings, fmt.Sprintf("%s: certificate name %q dropped: it is not one of the vhosts this container routes", set.Owner, n))
				continue
			}
			if w, ok := wildcardFor(n, opts.WildcardDomains); ok {
				add(w, []string{w})
				continue
			}
			rest = append(rest, n)
		}
		if len(rest) > 0 {
			queue = append(queue, pending{names: rest, owner: set.Owner})
		}
	}

	// A merge never changes a certificate's issuer: while the sets sharing
	// a subject disagree on the issuer, the sets that disagree with the
	// subject's own issuer drop that subject. Every round drops a name, so
	// this ends.
	for {
		bySubject := map[string][]int{}
		for i, p := range queue {
			if len(p.names) > 0 {
				bySubject[p.names[0]] = append(bySubject[p.names[0]], i)
			}
		}
		changed := false
		for _, subject := range slices.Sorted(maps.Keys(bySubject)) {
			idx := bySubject[subject]
			mixed := false
			for _, i := range idx[1:] {
				if ChooseIssuer(queue[i].names, opts.Issuer) != ChooseIssuer(queue[idx[0]].names, opts.Issuer) {
					mixed = true
					break
				}
			}
			if !mixed {
				continue
			}
			keep := ChooseIssuer([]string{subject}, opts.Issuer)
			for _, i := range idx {
				if got := ChooseIssuer(queue[i].names, opts.Issuer); got != keep {
					warnings = append(warnings, fmt.Sprintf("certificate %q: %s asks for it with %q, which would change its issuer from %s to %s; those names get their own certificate",
						subject, queue[i].owner, queue[i].names[1:], keep, got))
					queue[i].names = queue[i].names[1:]
					changed = true
				}
			}
		}
		if !changed {
			break
		}
	}
	for _, p := range queue {
		if len(p.names) > 0 {
			add(p.names[0], p.names)
		}
	}

	// Collapse identical name sets: the smallest subject wins.
	bySet := map[string]store.WantedCert{}
	for primary, m := range byPrimary {
		others := make([]string, 0, len(m))
		for n := range m {
			if n != primary {
				others = append(others, n)
			}
		}
		slices.Sort(others)
		c := store.WantedCert{Primary: primary, Names: append([]string{primary}, others...)}
		key := NameSetKey(c.Names)
		if old, ok := bySet[key]; ok && old.Primary < primary {
			continue
		}
		bySet[key] = c
	}

	var out []store.WantedCert
	for _, c := range bySet {
		if len(c.Names) > MaxNames {
			warnings = append(warnings, fmt.Sprintf("certificate %q: %d names exceed the limit of %d; not requested", c.Primary, len(c.Names), MaxNames))
			continue
		}
		c.Issuer = ChooseIssuer(c.Names, opts.Issuer)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b store.WantedCert) int { return cmp.Compare(a.Primary, b.Primary) })
	slices.Sort(warnings)
	warnings = slices.Compact(warnings)
	return out, warnings
}

// ChooseIssuer returns store.IssuerLocal or store.IssuerACME for a
// certificate's names under the configured choice.
func ChooseIssuer(names []string, choice string) string {
	switch choice {
	case IssuerLocal:
		return store.IssuerLocal
	case IssuerACME:
		return store.IssuerACME
	}
	for _, n := range names {
		if IsLocalName(n) {
			return store.IssuerLocal
		}
	}
	return store.IssuerACME
}

// IsLocalName reports whether name is, or lies under, one of LocalSuffixes.
func IsLocalName(name string) bool {
	for _, s := range LocalSuffixes {
		if name == s || strings.HasSuffix(name, "."+s) {
			return true
		}
	}
	return false
}

// wildcardFor returns "*.d" when name is exactly one label below one of the
// wildcard domains d.
func wildcardFor(name string, domains []string) (string, bool) {
	for _, d := range domains {
		label, ok := strings.CutSuffix(name, "."+d)
		if ok && label != "" && label != "*" && !strings.Contains(label, ".") {
			return "*." + d, true
		}
	}
	return "", false
}

// NameSetKey is the canonical form of a name set: sorted, space-joined.
func NameSetKey(names []string) string {
	s := slices.Clone(names)
	slices.Sort(s)
	return strings.Join(slices.Compact(s), " ")
}

// SameNames reports whether a and b hold the same names in any order.
func SameNames(a, b []string) bool { return NameSetKey(a) == NameSetKey(b) }

// Covers reports whether a certificate for names is valid for host: an exact
// match, or a wildcard "*.d" and host exactly one label below d.
func Covers(names []string, host string) bool {
	for _, n := range names {
		if n == host {
			return true
		}
		if d, ok := strings.CutPrefix(n, "*."); ok {
			if label, ok := strings.CutSuffix(host, "."+d); ok && label != "" && !strings.Contains(label, ".") {
				return true
			}
		}
	}
	return false
}

// Select picks the bundle to serve host with: among bundles covering it, an
// exact name beats a wildcard, then the latest expiry wins. For the nginx
// stage and for status.
func Select(bundles []store.CertBundle, host string) (store.CertBundle, bool) {
	var best store.CertBundle
	bestExact, found := false, false
	for _, b := range bundles {
		if !Covers(b.Names, host) {
			continue
		}
		exact := slices.Contains(b.Names, host)
		if !found || (exact && !bestExact) || (exact == bestExact && b.NotAfter.After(best.NotAfter)) {
			best, bestExact, found = b, exact, true
		}
	}
	return best, found
}

var errEmptyName = errors.New("empty name")

// NormalizeName validates one certificate name and returns it lower-case in
// ASCII (punycode) form. A leading "*." label is allowed; wildcards
// elsewhere, empty labels, labels over 63 bytes, names over 253 bytes, and
// characters outside letters, digits and hyphen are refused.
func NormalizeName(name string) (string, error) {
	if name == "" {
		return "", errEmptyName
	}
	if !utf8.ValidString(name) || len(name) > 1024 {
		return "", fmt.Errorf("name %q: not a host name", name)
	}
	rest, wild := strings.CutPrefix(name, "*.")
	a, err := idna.Lookup.ToASCII(strings.TrimSuffix(rest, "."))
	if err != nil {
		return "", fmt.Errorf("name %q: %w", name, err)
	}
	a = strings.ToLower(a)
	if len(a) == 0 || len(a) > 253 {
		return "", fmt.Errorf("name %q: length must be 1 to 253 bytes", name)
	}
	for _, l := range strings.Split(a, ".") {
		if l == "" || len(l) > 63 {
			return "", fmt.Errorf("name %q: label %q must be 1 to 63 bytes", name, l)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("name %q: label %q starts or ends with a hyphen", name, l)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return "", fmt.Errorf("name %q: character %q not allowed", name, r)
			}
		}
	}
	if wild {
		return "*." + a, nil
	}
	return a, nil
}
