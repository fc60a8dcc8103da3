package routing

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/portico/portico/internal/store"
)

// Address modes (portico.address): how a proxy reaches a container.
const (
	// AddressAuto, the default: the container's own address when the proxy
	// shares a network with it, else its host's address and a published
	// port (see remote).
	AddressAuto = "auto"
	// AddressContainer: always the container's address on its network,
	// for instance an overlay network that spans the hosts.
	AddressContainer = "container"
	// AddressHost: always the host's address and a published port.
	AddressHost = "host"
)

// reach sets svc.Network, svc.Addr and svc.Reach: how this proxy reaches
// the container.
//
// Decisions (also in docs/labels.md and docs/reporter.md):
//   - A proxy shares a network with a container when the container runs
//     on the proxy's own node (Options.Node, the proxy's reporter host).
//     Docker's bridge networks are each host's own: the proxy cannot reach
//     a bridge address of another host, and Portico cannot tell an overlay
//     network that spans hosts from a bridge of the same name, so a
//     container on another node is reached through its host unless
//     portico.address=container says otherwise.
//   - A record without a host address (its reporter has no
//     --advertise-addr) is reached at its container address in auto mode:
//     this is the single-host setup, unchanged. So is every record when
//     Options.Node is "".
//   - In host mode the upstream is the binding of the container's
//     port/tcp (portico.port, or the default port) with a host port: a
//     binding on all addresses (0.0.0.0, ::, or none given) is reached at
//     the record's host address, a binding on one address at that
//     address. Bindings on all addresses come first, then by address.
//   - A running container in host mode whose port is not published is an
//     error naming it, the port and its node. A container that is not
//     running has no bindings (Docker drops them when it stops): its Addr
//     is "" and it is not live, as a stopped container in container mode.
//   - The host address and a binding's address come from the record and
//     are checked as container addresses are (upstreamAddr). A record from
//     another node may not point at an address of the proxy's own host
//     (Options.LocalAddr); a container on the proxy's own node forced to
//     host mode may, since that is where its port is published.
func (p *parser) reach(opts Options, svc *Service) {
	mode := AddressAuto
	s := p.lookup(label(LabelAddress))
	if s.ok {
		m, err := keyword(s.value, AddressAuto, AddressContainer, AddressHost)
		if err != nil {
			p.add(SeverityError, s.key, s.value, "%v", err)
			return
		}
		mode = m
	}
	if mode == AddressAuto {
		mode = AddressContainer
		if remote(p.c, opts) {
			mode = AddressHost
		}
	}
	if mode == AddressContainer {
		svc.Network, svc.Addr = p.address(opts, svc.Port)
		return
	}
	svc.Reach = AddressHost
	svc.Addr = p.hostAddress(opts, svc.Port, s)
}

// remote reports whether auto mode reaches c through its host: c comes from
// another node than the proxy's, whose reporter advertises an address.
func remote(c store.Container, opts Options) bool {
	return opts.Node != "" && c.Host != opts.Node && c.HostAddr != ""
}

// hostAddress returns "ip:port" for the published binding of the container
// port, or "" (with an error problem when it should have one). s is the
// portico.address setting, when one was given: the problem names it.
func (p *parser) hostAddress(opts Options, port int, s setting) string {
	key, value := LabelAddress, ""
	if s.ok {
		key, value = s.key, s.value
	}
	node := Clip(p.c.Host, maxItemBytes)
	var all, one []store.Port
	for _, pt := range p.c.Ports {
		if pt.Port != port || pt.HostPort < 1 || pt.HostPort > 65535 || !(pt.Proto == "" || strings.EqualFold(pt.Proto, "tcp")) {
			continue
		}
		if a, err := netip.ParseAddr(pt.HostIP); pt.HostIP == "" || err == nil && a.IsUnspecified() {
			all = append(all, pt)
		} else {
			one = append(one, pt)
		}
	}
	if len(all)+len(one) == 0 {
		if p.c.State != "running" || port == 0 {
			return ""
		}
		p.add(SeverityError, key, value, "container port %d/tcp is not published on node %q (docker run -p); %s", port, node, p.why(opts))
		return ""
	}
	if !opts.LoopbackUpstreams && opts.Node == p.c.Host {
		// Its own node: the published port is on this host by design.
		opts.LocalAddr = nil
	}
	var firstErr string
	for i, pt := range append(all, one...) {
		ip, src := pt.HostIP, "host port binding"
		if i < len(all) {
			if p.c.HostAddr == "" {
				if firstErr == "" {
					firstErr = fmt.Sprintf("container port %d/tcp is published on all addresses of node %q, whose reporter has no --advertise-addr; %s", port, node, p.why(opts))
				}
				continue
			}
			ip, src = p.c.HostAddr, "host address (the reporter's --advertise-addr)"
		}
		fam := "IPv4"
		if strings.Contains(ip, ":") {
			fam = "IPv6"
		}
		a, why := upstreamAddr(fam, ip, opts)
		if why != "" {
			if firstErr == "" {
				firstErr = fmt.Sprintf("node %q: %s %q is not a usable unicast address: %s", node, src, Clip(ip, maxItemBytes), why)
			}
			continue
		}
		return netip.AddrPortFrom(a, uint16(pt.HostPort)).String()
	}
	// The record's own values are at fault: the problem names no label
	// unless one forced host mode.
	if !s.ok {
		key = ""
	}
	p.add(SeverityError, key, value, "%s", firstErr)
	return ""
}

// why says why a container is reached through its host, for a problem.
func (p *parser) why(opts Options) string {
	if opts.Node != "" && p.c.Host != opts.Node {
		return fmt.Sprintf("a proxy on node %q shares no network with it; publish the port or set %s=%s", Clip(opts.Node, maxItemBytes), LabelAddress, AddressContainer)
	}
	return fmt.Sprintf("%s=%s needs a published port", LabelAddress, AddressHost)
}
