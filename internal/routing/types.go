// Package routing turns container records into routes. It is pure: no I/O,
// no clock, no randomness. Every decision about what a label means, whether a
// value is valid and how conflicts resolve lives here and is table-tested.
package routing

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/portico/portico/internal/siteopts"
)

// Protocols a route can speak to its upstream.
const (
	ProtoHTTP  = "http"
	ProtoHTTPS = "https"
	ProtoGRPC  = "grpc"
	ProtoGRPCS = "grpcs"
)

// HTTPS modes (portico.https).
const (
	HTTPSAuto     = "auto"     // the default: redirect for a publicly trusted (ACME) certificate, both for a local-CA one
	HTTPSRedirect = "redirect" // serve HTTPS once a certificate exists; HTTP redirects to it
	HTTPSBoth     = "both"     // serve both once a certificate exists
	HTTPSOff      = "off"      // HTTP only; no certificate is requested
)

// DefaultHSTSMaxAge is the max-age for portico.hsts=true.
const DefaultHSTSMaxAge = 31536000

// HSTS is a Strict-Transport-Security setting. The zero value, and any
// value with MaxAge 0, sends no header. It is comparable.
type HSTS struct {
	MaxAge            int // seconds, 0-maxHSTS
	IncludeSubDomains bool
	Preload           bool
}

// On reports whether a header is sent.
func (h HSTS) On() bool { return h.MaxAge > 0 }

// Header is the header value, "" when off, in one canonical form:
// "max-age=N[; includeSubDomains][; preload]". It is built from the number
// and constants only, so it is safe in an nginx string and a Lua value.
func (h HSTS) Header() string {
	if !h.On() {
		return ""
	}
	s := "max-age=" + strconv.Itoa(h.MaxAge)
	if h.IncludeSubDomains {
		s += "; includeSubDomains"
	}
	if h.Preload {
		s += "; preload"
	}
	return s
}

// String is Header, or "off".
func (h HSTS) String() string {
	if !h.On() {
		return "off"
	}
	return h.Header()
}

// Options are the proxy-wide settings routing needs.
type Options struct {
	// Network is the Docker network the proxy shares with the containers
	// (--network). "" means none is configured.
	Network string
	// Allowed limits the names each node's containers may claim
	// (--allowed-domains); the zero value allows every name.
	Allowed AllowList
	// LocalAddr, if set, reports whether an address (unmapped: IPv4 as
	// IPv4) belongs to one of the proxy host's interfaces; such an upstream
	// is rejected. nil: none is known.
	LocalAddr func(netip.Addr) bool
	// Node is the reporter host (--host) this proxy runs on: a container
	// whose record comes from another node and carries its host's
	// advertised address is reached at that address and a published port
	// (reach.go). "" means every container is treated as on this proxy's
	// node, as on a single host.
	Node string
	// LoopbackUpstreams permits loopback upstream addresses. Only tests of
	// the stages set it (their upstreams are servers on 127.0.0.1); no flag
	// does.
	LoopbackUpstreams bool
}

// Service is one container's validated intent.
type Service struct {
	ContainerID string
	Container   string // container name
	Node        string // reporter host the container runs on
	// Hosts are validated, lower-case, punycode vhost names; Hosts[0] is the
	// certificate subject.
	Hosts []string
	// CertHosts are the names to certify: LETSENCRYPT_HOST or ACME_HOST when
	// set (validated), else Hosts. Empty when HTTPS is off.
	CertHosts []string
	Port      int
	Protocol  string
	Network   string // network whose address is used
	// Addr is "ip:port" (IPv6 in brackets) ready for nginx; "" when the
	// container has no address on Network (for instance it is stopped).
	Addr    string
	Default bool
	HTTPS   string
	HSTS    HSTS
	// Site are the per-site options (package siteopts).
	Site siteopts.Options
	// Live is true when the container should receive traffic.
	Live bool
	// Reach is AddressHost when Addr is the container's host's address
	// and a published port (Network is then ""); "" when Addr is the
	// container's own address on Network.
	Reach string
}

// Route is one vhost: one nginx server block and one upstream.
type Route struct {
	Host     string
	Protocol string
	Default  bool
	HTTPS    string
	HSTS     HSTS
	// Site are the first claimant's per-site options.
	Site siteopts.Options
	// Upstreams are the live replicas' addresses, sorted and unique. It may
	// be empty: the vhost is known but no replica is live.
	Upstreams []string
	// Containers names every container that claims the vhost, sorted.
	Containers []string
}

// Severity of a Problem.
type Severity string

const (
	SeverityError   Severity = "error"   // the container, or its claim on a vhost, is rejected
	SeverityWarning Severity = "warning" // accepted, but something is off
)

// Problem is one finding about one container's configuration.
type Problem struct {
	Severity    Severity `json:"severity"`
	ContainerID string   `json:"container_id"`
	Container   string   `json:"container"`
	Node        string   `json:"node,omitempty"`
	Label       string   `json:"label,omitempty"`
	// Value is the offending item: one host of a list, or the whole value
	// of a scalar label, cut to 128 bytes (never inside a UTF-8 sequence).
	Value string `json:"value,omitempty"`
	// ValueBytes is the offending item's full length when Value was cut,
	// else 0.
	ValueBytes int    `json:"value_bytes,omitempty"`
	Message    string `json:"message"`
	// More is set on a container's summary problem only: how many of its
	// problems were not recorded (at most MaxProblems are).
	More int `json:"more,omitempty"`
}

// Error renders the problem as `container "web": label portico.port="abc": ...`.
// Value is quoted with %q, so hostile bytes print escaped. Label holds a label
// key or, for values read from the environment (VIRTUAL_HOST, ...), the
// variable's name, rendered as `env VIRTUAL_PORT="abc"`. A key that is not
// plain [A-Za-z0-9._/-] (an unknown label can be anything) is quoted too.
func (p Problem) Error() string {
	s := fmt.Sprintf("container %q", p.Container)
	if p.Label != "" {
		kind, key := "label", p.Label
		if isEnvName(key) {
			kind = "env"
		}
		if strings.TrimFunc(key, plainKeyRune) != "" {
			key = strconv.Quote(key)
		}
		s += fmt.Sprintf(": %s %s=%q", kind, key, p.Value)
		if p.ValueBytes > 0 {
			s += fmt.Sprintf("… (%d bytes)", p.ValueBytes)
		}
	}
	return s + ": " + p.Message
}

func plainKeyRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' || r == '/'
}

// Result is everything routing derives from a set of records.
type Result struct {
	// Services are the accepted, proxied containers, sorted by name, node, ID.
	Services []Service
	// Routes are sorted by Host.
	Routes []Route
	// Problems are sorted by container name, node, label, message.
	Problems []Problem
}
