// Package store holds the records Portico keeps in etcd, the one mapping from
// records to keys (keys.go), and the client code every stage shares: connecting,
// the embedded server, single-transaction writes and the level-triggered
// list-then-watch loop.
//
// Values are indented JSON so that `etcdctl get --prefix /portico` is readable.
package store

import (
	"encoding/json"
	"fmt"
	"time"
)

// MaxValueBytes bounds any value a stage will decode. Records written by
// something other than Portico that exceed it are rejected per key.
const MaxValueBytes = 1 << 20

// Container is the reporter's record of one Docker container. The reporter on
// Host is the only writer of its containers' records.
type Container struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Host  string `json:"host"`
	Image string `json:"image"`
	// Labels holds the labels Portico reads (routing.IsPorticoLabel) and
	// the reporter's label-filter keys; other labels never leave the host.
	Labels map[string]string `json:"labels,omitempty"`
	// Env holds only the allow-listed variables (see routing.AllowedEnv);
	// the rest of a container's environment never leaves its host.
	Env map[string]string `json:"env,omitempty"`
	// Networks maps a Docker network name to the container's addresses on it.
	Networks map[string]Network `json:"networks,omitempty"`
	// Ports lists exposed container ports, with their host bindings if published.
	Ports []Port `json:"ports,omitempty"`
	// HostAddr is the address the reporter's host is reached at from the
	// other hosts (the reporter's --advertise-addr); "" when none was
	// given. A proxy on another host reaches the container at HostAddr and
	// a published port (routing, portico.address).
	HostAddr string `json:"host_addr,omitempty"`
	// State is Docker's state: created, running, paused, restarting, exited, dead.
	State string `json:"state"`
	// Health is "", "starting", "healthy" or "unhealthy".
	Health string `json:"health,omitempty"`
	// Stopping is set while a running container is being stopped: Docker
	// sent it its stop signal (or SIGKILL, SIGINT, SIGQUIT) and it has not
	// exited yet. Such a container gets no traffic (see Live). Absent in
	// records of older reporters, which means false.
	Stopping bool `json:"stopping,omitempty"`
	// Rejected, when set, says why the reporter could not publish this
	// container (for instance its record exceeded the reporter's size cap).
	// Such a record holds only ID, Name, Host and State; it never routes.
	Rejected string `json:"rejected,omitempty"`
	// CreateRevision is the etcd revision that created the record's key
	// (0: unknown). It is not stored in the value: readers fill it from the
	// key's metadata. The earlier claim of a vhost keeps it.
	CreateRevision int64 `json:"-"`
	// ModRevision is the etcd revision that last wrote the record (0:
	// unknown), filled like CreateRevision. Equal (Host, ID, ModRevision)
	// means equal records: routing.Memo reuses their parse.
	ModRevision int64 `json:"-"`
}

// Network is a container's addresses on one Docker network.
type Network struct {
	IPv4 string `json:"ipv4,omitempty"`
	IPv6 string `json:"ipv6,omitempty"`
}

// Port is one exposed container port and, when published, its host binding.
type Port struct {
	Port     int    `json:"port"`
	Proto    string `json:"proto"`
	HostIP   string `json:"host_ip,omitempty"`
	HostPort int    `json:"host_port,omitempty"`
}

// Live reports whether the container should receive traffic: running, not
// paused, not being stopped, and not failing (or still starting) a health
// check.
func (c Container) Live() bool {
	return c.State == "running" && !c.Stopping && (c.Health == "" || c.Health == "healthy")
}

// NginxStatus is what one nginx stage last did, under NginxStatusKey.
type NginxStatus struct {
	Instance string `json:"instance"`
	// Applied is the SHA-256 of the config nginx runs.
	Applied string `json:"applied,omitempty"`
	// Routes is the number of vhosts in the applied config.
	Routes int `json:"routes"`
	// Reloads counts successful reloads since the stage started.
	Reloads int `json:"reloads"`
	// AppliedRoutes maps each vhost of the applied config to a digest of
	// its route (nginx.RouteDigest), so `portico explain` can tell whether
	// this instance runs a route as it is now. Omitted past
	// nginx.MaxStatusRoutes routes.
	AppliedRoutes map[string]string `json:"applied_routes,omitempty"`
	// Error is the last failed render or reload, with the vhosts it held.
	Error       string   `json:"error,omitempty"`
	ErrorRoutes []string `json:"error_routes,omitempty"`
	// HTTPAddrs and HTTPSAddrs are the addresses nginx listens on, as
	// configured (":80" when none was given).
	HTTPAddrs  []string `json:"http_addrs,omitempty"`
	HTTPSAddrs []string `json:"https_addrs,omitempty"`
	// AppliedAt is when the config in place was put there: the last apply
	// of this stage, or, after a restart that kept the config, the time the
	// file was written.
	AppliedAt time.Time `json:"applied_at,omitzero"`
	// HTTP3 says HTTPS sites are also served over QUIC (UDP, same ports);
	// HTTP3Off is why not, when they are not.
	HTTP3    bool   `json:"http3,omitempty"`
	HTTP3Off string `json:"http3_off,omitempty"`
}

// NginxSettings are the settings an nginx stage routes and renders with,
// under Keys.NginxSettings: `portico status` and `portico explain` use them,
// so that they agree with the stage without repeating its flags (a flag
// given to them still wins).
type NginxSettings struct {
	Instance string `json:"instance"`
	// Network and AllowedDomains are --network and --allowed-domains.
	Network        string   `json:"network,omitempty"`
	AllowedDomains []string `json:"allowed_domains,omitempty"`
	// The rest shape the rendered config (explain shows a server block).
	HTTPAddrs            []string `json:"http_addrs,omitempty"`
	HTTPSAddrs           []string `json:"https_addrs,omitempty"`
	IncludeDir           string   `json:"include_dir,omitempty"`
	TrustedProxies       []string `json:"trusted_proxies,omitempty"`
	MaxRequestsPerClient int      `json:"max_requests_per_client"`
	NginxVersion         string   `json:"nginx_version,omitempty"`
	HTTP3                bool     `json:"http3,omitempty"`
	// CustomTemplate: the stage renders with its own --template, which
	// explain cannot read; it renders the built-in one unless given it.
	CustomTemplate bool `json:"custom_template,omitempty"`
}

// Encode renders v as the indented JSON stored in etcd.
func Encode(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}

// Decode parses a stored value into v, rejecting values over MaxValueBytes
// and invalid or mistyped JSON, so a foreign writer's record fails loudly and
// alone. Unknown fields are ignored, so an older stage can read a newer
// stage's records during a rolling upgrade.
func Decode(key string, value []byte, v any) error {
	if len(value) > MaxValueBytes {
		return fmt.Errorf("key %q: value of %d bytes exceeds %d", key, len(value), MaxValueBytes)
	}
	if err := json.Unmarshal(value, v); err != nil {
		return fmt.Errorf("key %q: %w", key, err)
	}
	return nil
}

// DecodeContainerEntry is DecodeContainer for a mirrored entry; it fills the
// record's CreateRevision from the entry.
func DecodeContainerEntry(key string, e Entry) (Container, error) {
	c, err := DecodeContainer(key, e.Value)
	if err != nil {
		return Container{}, err
	}
	c.CreateRevision, c.ModRevision = e.CreateRevision, e.ModRevision
	return c, nil
}

// DecodeContainer parses and checks a container record stored under key.
func DecodeContainer(key string, value []byte) (Container, error) {
	var c Container
	if err := Decode(key, value, &c); err != nil {
		return Container{}, err
	}
	host, id, ok := ParseContainerKey(key)
	switch {
	case !ok:
		return Container{}, fmt.Errorf("key %q: not a container key (<prefix>/containers/<host>/<id>)", key)
	case c.ID == "":
		return Container{}, fmt.Errorf("key %q: record has no id", key)
	case host != c.Host || id != c.ID:
		return Container{}, fmt.Errorf("key %q: record names host %q id %q, which do not match its key", key, c.Host, c.ID)
	}
	return c, nil
}
