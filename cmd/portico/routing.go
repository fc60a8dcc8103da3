package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/portico/portico/internal/routing"
)

// addAllowedDomains is --allowed-domains, read by every command that builds
// routes (nginx, certs, run, status).
func addAllowedDomains(fs *flag.FlagSet) *listFlag {
	return newList().list(fs, "allowed-domains", "limit the names containers may claim, comma separated: example.com (it and its subdomains), *.example.com (subdomains only), * (any); node=example.com applies to that Docker host's (--host) containers only. Once set, a node no entry covers can claim nothing (see docs/labels.md)")
}

// routingOptions turns the routing flags into routing.Options. Upstreams on
// one of this host's own interface addresses are refused (hostAddrs).
func routingOptions(network string, allowed *listFlag) (routing.Options, error) {
	opts := routing.Options{Network: network, LocalAddr: newHostAddrs(net.InterfaceAddrs, time.Now).has, NetworkOnly: network != "" && inContainer()}
	if allowed == nil {
		return opts, nil
	}
	al, err := routing.ParseAllowList(allowed.vals)
	if err != nil {
		return routing.Options{}, fmt.Errorf("--allowed-domains: %w", err)
	}
	opts.Allowed = al
	return opts, nil
}

// hostAddrs knows this host's interface addresses, re-read at most every
// hostAddrsTTL: Docker adds a bridge, with its gateway address, per network.
type hostAddrs struct {
	list func() ([]net.Addr, error)
	now  func() time.Time

	mu    sync.Mutex
	read  time.Time
	addrs map[netip.Addr]bool
}

const hostAddrsTTL = 2 * time.Second

func newHostAddrs(list func() ([]net.Addr, error), now func() time.Time) *hostAddrs {
	return &hostAddrs{list: list, now: now}
}

// has reports whether a (IPv4 unmapped) is an address of this host. When the
// interfaces cannot be read, the last known set is used.
func (h *hostAddrs) has(a netip.Addr) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now := h.now(); h.addrs == nil || now.Sub(h.read) >= hostAddrsTTL {
		if as, err := h.list(); err == nil {
			m := make(map[netip.Addr]bool, len(as))
			for _, ad := range as {
				if p, err := netip.ParsePrefix(ad.String()); err == nil {
					m[p.Addr().Unmap().WithZone("")] = true
				} else if ip, err := netip.ParseAddr(ad.String()); err == nil {
					m[ip.Unmap().WithZone("")] = true
				}
			}
			h.addrs, h.read = m, now
		}
	}
	return h.addrs[a.Unmap().WithZone("")]
}

// inContainer says this process runs in a Docker container (Docker
// creates /.dockerenv in each): there nginx reaches only the networks the
// container is attached to (routing.Options.NetworkOnly).
func inContainer() bool {
	_, err := os.Stat("/.dockerenv")
	return err == nil
}
