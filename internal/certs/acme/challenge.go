package acme

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Challenge types, and the choice that picks one per name.
const (
	ChallengeAuto   = "auto"
	ChallengeHTTP01 = "http-01"
	ChallengeDNS01  = "dns-01"
)

// ErrUnsolvable marks a name no configured challenge can validate (a
// wildcard without a DNS provider, dns-01 forced without a provider, http-01
// off). It is the operator's to fix: the certs stage orders nothing for such
// a certificate and says why in its status, until the configuration changes.
var ErrUnsolvable = errors.New("no challenge can validate this name")

// ParseChallenges checks --acme-challenge values: "auto", "http-01" or
// "dns-01" for every zone, or "<zone>=<choice>" for one zone (and its
// subdomains). It returns zone -> choice, "" being every other zone.
func ParseChallenges(vals []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range vals {
		zone, choice, ok := strings.Cut(v, "=")
		if !ok {
			zone, choice = "", v
		}
		zone, choice = normalise(zone), strings.ToLower(strings.TrimSpace(choice))
		switch choice {
		case ChallengeAuto, ChallengeHTTP01, ChallengeDNS01:
		default:
			return nil, fmt.Errorf("--acme-challenge %q: %q is not auto, http-01 or dns-01", v, choice)
		}
		if strings.HasPrefix(zone, "*") || strings.ContainsAny(zone, " /=") {
			return nil, fmt.Errorf("--acme-challenge %q: zone %q: give a domain, without *.", v, zone)
		}
		if _, dup := out[zone]; dup {
			return nil, fmt.Errorf("--acme-challenge %q: zone %q given twice", v, zone)
		}
		out[zone] = choice
	}
	return out, nil
}

// zoneOf returns the longest of zones equal to name (without a leading
// "*.") or a suffix of it at a label boundary; "" (every zone) if listed
// and nothing longer matches; ok false if none.
func zoneOf(name string, zones []string) (string, bool) {
	d := strings.TrimPrefix(normalise(name), "*.")
	best, found := "", false
	for _, z := range zones {
		if z == "" || d == z || strings.HasSuffix(d, "."+z) {
			if !found || len(z) > len(best) {
				best, found = z, true
			}
		}
	}
	return best, found
}

// ChooseChallenge picks the challenge that validates name. The longest
// zone of overrides (--acme-challenge) that matches decides, unless it
// says auto; auto means dns-01 when a DNS provider's zone (dnsZones, ""
// for the default provider) covers name, and http-01 otherwise. A choice
// that cannot work is an error wrapping ErrUnsolvable: a wildcard by
// http-01 (RFC 8555 8.3 forbids it), dns-01 with no provider for the name,
// http-01 when it is off (http01 false).
func ChooseChallenge(name string, dnsZones []string, overrides map[string]string, http01 bool) (string, error) {
	choice := ChallengeAuto
	if z, ok := zoneOf(name, slices.Collect(maps.Keys(overrides))); ok {
		choice = overrides[z]
	}
	_, hasDNS := zoneOf(name, dnsZones)
	if choice == ChallengeAuto {
		choice = ChallengeHTTP01
		if hasDNS {
			choice = ChallengeDNS01
		}
	}
	wildcard := strings.HasPrefix(name, "*.")
	switch {
	case choice == ChallengeDNS01 && !hasDNS:
		return "", fmt.Errorf("%s: dns-01 needs a DNS provider for its zone (--dns-provider): %w", name, ErrUnsolvable)
	case choice == ChallengeHTTP01 && wildcard && hasDNS:
		return "", fmt.Errorf("%s: a wildcard can only be validated by dns-01, but --acme-challenge asks for http-01: %w", name, ErrUnsolvable)
	case choice == ChallengeHTTP01 && wildcard:
		return "", fmt.Errorf("%s: a wildcard can only be validated by dns-01: configure a DNS provider for its zone (--dns-provider): %w", name, ErrUnsolvable)
	case choice == ChallengeHTTP01 && !http01:
		return "", fmt.Errorf("%s: http-01 is off and no DNS provider covers it: %w", name, ErrUnsolvable)
	}
	return choice, nil
}

// solverSet is which solvers one order's lego client has.
type solverSet struct{ dns, http bool }

// Solvers returns the challenges a certificate's names need, each name
// by ChooseChallenge. One lego order solves every authorization with the
// solvers of its client, preferring http-01 where the CA offers it; so a
// certificate whose names need both gets both, and then its names that
// are not wildcards are validated by http-01 (docs/acme.md).
func (i *Issuer) solvers(names []string) (solverSet, error) {
	var s solverSet
	var errs []error
	for _, n := range names {
		c, err := ChooseChallenge(n, i.dnsZones, i.cfg.Challenges, i.cfg.HTTP01 != nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if c == ChallengeDNS01 {
			s.dns = true
		} else {
			s.http = true
		}
	}
	return s, errors.Join(errs...)
}

// Preflight checks, without any request, that every name of a certificate
// has a challenge that can validate it. Its error wraps ErrUnsolvable.
func (i *Issuer) Preflight(names []string) error {
	_, err := i.solvers(names)
	return err
}
