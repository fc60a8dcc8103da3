package routing

import "net/netip"

// upstreamAddr parses one address of a record's network (fam is "IPv4" or
// "IPv6", the field it came from) and returns it, or why it can never be an
// upstream. Besides what does not parse, it refuses every range that points
// at the proxy host itself or at no single host: unspecified and "this
// network" (0.0.0.0/8, ::), loopback (127.0.0.0/8, ::1), link-local
// (169.254.0.0/16, fe80::/10), multicast (224.0.0.0/4, ff00::/8) and the
// limited broadcast address; and, when opts.LocalAddr is set, any address of the
// proxy host's own interfaces (a Docker bridge's gateway reaches services
// of the host). An IPv4-mapped IPv6 address (::ffff:127.0.0.1) is judged by
// the IPv4 address it maps.
func upstreamAddr(fam, s string, opts Options) (netip.Addr, string) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, "not an IP address"
	case a.Zone() != "":
		return netip.Addr{}, "has an IPv6 zone"
	case (fam == "IPv4") != a.Is4():
		return netip.Addr{}, "not an " + fam + " address"
	}
	u := a.Unmap()
	switch {
	case u.IsUnspecified() || u.Is4() && u.As4()[0] == 0:
		return netip.Addr{}, "unspecified (0.0.0.0/8, ::)"
	case u.IsLoopback() && !opts.LoopbackUpstreams:
		return netip.Addr{}, "loopback: it would point the site at the proxy host"
	case u.IsLinkLocalUnicast():
		return netip.Addr{}, "link-local"
	case u.IsMulticast():
		return netip.Addr{}, "multicast"
	case u == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return netip.Addr{}, "the broadcast address"
	case u.IsLoopback():
		// allowed by opts; LocalAddr would list it
	case opts.LocalAddr != nil && opts.LocalAddr(u):
		return netip.Addr{}, "an address of the proxy host itself"
	}
	return a, ""
}
