package render

import (
	"fmt"
	"net/netip"
	"strings"
)

// Client address headers. Without trusted proxies the upstream gets the
// connection's address in X-Forwarded-For and X-Real-IP, whatever the client
// sent. With trusted proxies, nginx's realip module takes the client address
// from X-Forwarded-For, but only on connections from those proxies (walking
// the list from the right past trusted addresses), and only then is the
// incoming chain forwarded, with the proxy's address appended.

// xffPlain is X-Forwarded-For without trusted proxies: the peer only.
const xffPlain = "$remote_addr"

// xffTrusted is X-Forwarded-For with trusted proxies (see the template's
// geo and map): the incoming chain plus the peer for a trusted peer, the
// peer alone otherwise.
const xffTrusted = "$portico_x_forwarded_for"

// ParseTrustedProxies parses --trusted-proxies values: CIDRs ("10.0.0.0/8",
// "fd00::/8") or single addresses ("127.0.0.1"). Host bits are cleared, so
// the result renders as canonical prefixes; duplicates are dropped. Every
// error names the value.
func ParseTrustedProxies(vals []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	seen := map[netip.Prefix]bool{}
	for _, v := range vals {
		p, err := parseTrusted(strings.TrimSpace(v))
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

func parseTrusted(v string) (netip.Prefix, error) {
	if v == "" {
		return netip.Prefix{}, fmt.Errorf("trusted proxy %q: empty", v)
	}
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("trusted proxy %q: not a CIDR: %w", v, err)
		}
		return checkTrusted(v, p)
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("trusted proxy %q: not an address or CIDR: %w", v, err)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("trusted proxy %q: zoned addresses are not allowed", v)
	}
	return checkTrusted(v, netip.PrefixFrom(a, a.BitLen()))
}

// checkTrusted refuses prefixes that trust every address: the client could
// then name any address it likes, which is what the plain setting prevents.
func checkTrusted(v string, p netip.Prefix) (netip.Prefix, error) {
	p = p.Masked()
	if !p.IsValid() {
		return netip.Prefix{}, fmt.Errorf("trusted proxy %q: invalid prefix", v)
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, fmt.Errorf("trusted proxy %q: trusts every address; list the proxies' networks", v)
	}
	if p == netip.PrefixFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), 32) {
		// No proxy has it, and nginx reads "255.255.255.255" (INADDR_NONE)
		// as a host name: `nginx -t` would refuse the config.
		return netip.Prefix{}, fmt.Errorf("trusted proxy %q: the broadcast address is no proxy's address", v)
	}
	return p, nil
}

// trustedView checks the prefixes a Settings carries (they may be built
// without ParseTrustedProxies) and renders them.
func trustedView(ps []netip.Prefix) ([]string, error) {
	out := make([]string, 0, len(ps))
	seen := map[string]bool{}
	for _, p := range ps {
		q, err := checkTrusted(p.String(), p)
		if err != nil {
			return nil, err
		}
		if s := q.String(); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}
