package render

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portico/portico/internal/nginx/supervise"
)

// MainConf is the nginx.conf of supervised mode. Every path nginx writes
// (pid, temp files, logs) lives under Prefix, so nginx needs nothing from the
// system layout and several instances can run side by side.
type MainConf struct {
	// Prefix is the directory nginx is started with (-p).
	Prefix string
	// Include is the absolute path of the rendered vhost config.
	Include string
	// AccessLog is an absolute file for the access log; "" turns it off.
	AccessLog string
	// TempDir is where workers buffer request and response bodies; ""
	// means <Prefix>/temp. The workers must be able to enter it.
	TempDir string
	// Client bounds what one client connection may hold; zero fields take
	// DefaultClientLimits' values.
	Client ClientLimits
	// Modules are dynamic modules to load (absolute .so paths), in order:
	// the dynamic path's ndk and Lua modules.
	Modules []string
	// User and Group, when User is set, are the account nginx's workers
	// run as (the "user" directive): meaningful only when nginx's master
	// runs as root. "" renders no directive: a root master then drops its
	// workers to nginx's compiled-in default (nobody), another user's
	// workers stay that user. Group "" means the group named like User.
	User, Group string
}

func (m MainConf) tempDir() string {
	if m.TempDir != "" {
		return m.TempDir
	}
	return filepath.Join(m.Prefix, "temp")
}

// Connection limits of the supervised nginx. A proxied request holds two
// file descriptors (client and upstream), so each worker may open twice
// its connections: a 1024 soft limit no longer caps it (2,300 idle
// half-sent requests starved every client before). The room is what keeps
// other clients served while one address holds half-sent requests (nginx's
// limit_conn counts a request only once its header is complete): 8,400
// such connections from one address filled 4,096 per worker and failed
// 148 of 165 other requests (TestOneAddressCannotStarveOthers). Each idle
// slot costs about 0.4 KB per worker, preallocated.
const (
	WorkerConnections  = 8192
	workerRlimitNofile = 2 * WorkerConnections
)

// ClientLimits are the per-client timeouts and keep-alive limits, chosen
// so that slow or idle clients (slowloris) are dropped in seconds.
type ClientLimits struct {
	// HeaderTimeout is the time a client has to send a request's header
	// (client_header_timeout), and over TLS to finish its handshake; nginx
	// then closes the connection. It is the whole header's time, not a
	// pause between bytes: one address must reopen its half-sent requests
	// this often to keep holding them.
	HeaderTimeout time.Duration
	// BodyTimeout is the longest pause between two reads of a request
	// body (client_body_timeout).
	BodyTimeout time.Duration
	// SendTimeout is the longest pause between two writes of a response
	// to a client that does not read (send_timeout).
	SendTimeout time.Duration
	// KeepaliveTimeout is how long an idle keep-alive connection stays
	// open (keepalive_timeout).
	KeepaliveTimeout time.Duration
	// KeepaliveRequests is the number of requests on one connection
	// before nginx closes it (keepalive_requests).
	KeepaliveRequests int
}

// DefaultClientLimits are the values docs/nginx.md documents.
func DefaultClientLimits() ClientLimits {
	return ClientLimits{
		HeaderTimeout:     5 * time.Second,
		BodyTimeout:       10 * time.Second,
		SendTimeout:       10 * time.Second,
		KeepaliveTimeout:  30 * time.Second,
		KeepaliveRequests: 1000,
	}
}

// withDefaults fills zero fields and refuses negative ones.
func (c ClientLimits) withDefaults() (ClientLimits, error) {
	d := DefaultClientLimits()
	for _, f := range []struct {
		name     string
		v        *time.Duration
		fallback time.Duration
	}{
		{"client header timeout", &c.HeaderTimeout, d.HeaderTimeout},
		{"client body timeout", &c.BodyTimeout, d.BodyTimeout},
		{"send timeout", &c.SendTimeout, d.SendTimeout},
		{"keepalive timeout", &c.KeepaliveTimeout, d.KeepaliveTimeout},
	} {
		switch {
		case *f.v < 0:
			return c, fmt.Errorf("%s %v: negative", f.name, *f.v)
		case *f.v == 0:
			*f.v = f.fallback
		case *f.v < time.Millisecond:
			return c, fmt.Errorf("%s %v: under a millisecond", f.name, *f.v)
		}
	}
	switch {
	case c.KeepaliveRequests < 0:
		return c, fmt.Errorf("keepalive requests %d: negative", c.KeepaliveRequests)
	case c.KeepaliveRequests == 0:
		c.KeepaliveRequests = d.KeepaliveRequests
	}
	return c, nil
}

// ms writes a duration as nginx milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }

// Dirs are the directories under Prefix that must exist before nginx starts
// (nginx creates only the last component of a temp path).
func (m MainConf) Dirs() []string {
	return []string{filepath.Join(m.Prefix, "logs"), m.tempDir()}
}

// Render returns the main config. It is meant to be started as
//
//	nginx -p <Prefix> -c <main> -g 'daemon off;'
//
// With User set, a "user" directive names the workers' account (docs/security.md:
// a dedicated one, so that no other process shares the workers' uid);
// without it, nginx's default applies. Errors go to stderr, which the supervisor copies into its log.
func (m MainConf) Render() ([]byte, error) {
	for _, c := range [...]struct{ what, p string }{{"nginx prefix", m.Prefix}, {"nginx include", m.Include}} {
		if err := checkPath(c.what, c.p); err != nil {
			return nil, err
		}
	}
	access := "off"
	if m.AccessLog != "" {
		if err := checkPath("access log", m.AccessLog); err != nil {
			return nil, err
		}
		access = m.AccessLog
	}
	if err := checkPath("nginx temp dir", m.tempDir()); err != nil {
		return nil, err
	}
	cl, err := m.Client.withDefaults()
	if err != nil {
		return nil, err
	}
	var load strings.Builder
	if m.User != "" {
		group := m.Group
		if group == "" {
			group = m.User
		}
		// In this order, so the error names the user first (a map's order
		// is random).
		if err := checkAccountName("nginx worker user", m.User); err != nil {
			return nil, err
		}
		if err := checkAccountName("nginx worker group", group); err != nil {
			return nil, err
		}
		fmt.Fprintf(&load, "user %s %s;\n", m.User, group)
	} else if m.Group != "" {
		return nil, fmt.Errorf("nginx worker group %q without a user", m.Group)
	}
	for _, mod := range m.Modules {
		if err := checkPath("nginx module", mod); err != nil {
			return nil, err
		}
		fmt.Fprintf(&load, "load_module %s;\n", mod)
	}
	t := func(name string) string { return filepath.Join(m.tempDir(), name) }
	var b strings.Builder
	fmt.Fprintf(&b, `# Generated by Portico (supervised nginx). Rewritten at a start when it changes.
%sworker_processes auto;
worker_shutdown_timeout 10s;
# Two descriptors per proxied request: client and upstream.
worker_rlimit_nofile %d;
pid %s;
error_log stderr warn;

events {
    worker_connections %d;
}

http {
    access_log %s;
    # Slow or idle clients are dropped in seconds (docs/nginx.md).
    client_header_timeout %s;
    client_body_timeout %s;
    send_timeout %s;
    keepalive_timeout %s;
    keepalive_requests %d;
    reset_timedout_connection on;
    client_body_temp_path %s;
    proxy_temp_path %s;
    fastcgi_temp_path %s;
    uwsgi_temp_path %s;
    scgi_temp_path %s;
    # Long host names (up to 253 bytes) and tens of thousands of vhosts, as
    # server names and as keys of the certificate map.
    server_names_hash_bucket_size 512;
    server_names_hash_max_size 131072;
    map_hash_bucket_size 512;
    map_hash_max_size 131072;
    server_tokens off;
    include %s;
}
`, load.String(), workerRlimitNofile, supervise.PidFile(m.Prefix), WorkerConnections, access,
		ms(cl.HeaderTimeout), ms(cl.BodyTimeout), ms(cl.SendTimeout), ms(cl.KeepaliveTimeout), cl.KeepaliveRequests,
		t("client_body"), t("proxy"), t("fastcgi"), t("uwsgi"), t("scgi"), m.Include)
	return []byte(b.String()), nil
}

// checkAccountName accepts the names useradd and groupadd accept (Debian's
// default NAME_REGEX, plus upper case and dots), so that a name cannot
// end the directive or add another.
func checkAccountName(what, n string) error {
	if n == "" || len(n) > 32 || n[0] == '-' {
		return fmt.Errorf("%s %q: not an account name", what, n)
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return fmt.Errorf("%s %q: character %q is not allowed in an account name", what, n, r)
		}
	}
	return nil
}

// Install creates the prefix's directories and writes the main config to
// path, for an nginx started by hand (tests, benchmarks) with -p Prefix.
func (m MainConf) Install(path string) error {
	main, err := m.Render()
	if err != nil {
		return err
	}
	for _, d := range m.Dirs() {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("nginx dir: %w", err)
		}
	}
	if err := os.WriteFile(path, main, 0o644); err != nil {
		return fmt.Errorf("nginx main config: %w", err)
	}
	return nil
}
