package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portico/portico/internal/hosts"
	"github.com/portico/portico/internal/nginx"
	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/redact"
	"github.com/portico/portico/internal/reporter"
	"github.com/portico/portico/internal/store"
)

// storeOpts are the flags every stage shares to reach etcd.
type storeOpts struct {
	endpoints *listFlag
	cert      *string
	key       *string
	ca        *string
	user      *string
	password  *secretFlag
	plaintext *bool
	prefix    *string
}

func addStore(fs *flag.FlagSet) *storeOpts {
	return &storeOpts{
		endpoints: newList().list(fs, "etcd-endpoints", "etcd client URLs, comma separated (run: empty starts an embedded etcd)"),
		cert:      fs.String("etcd-cert", "", "TLS client certificate for etcd"),
		key:       fs.String("etcd-key", "", "TLS client key for etcd"),
		ca:        fs.String("etcd-ca", "", "CA bundle that verifies the etcd servers"),
		user:      fs.String("etcd-user", "", "etcd user name"),
		password:  addSecret(fs, "etcd-password", "etcd password"),
		plaintext: fs.Bool("etcd-allow-plaintext-password", false, "allow --etcd-password over plain http:// endpoints, where anyone on the path reads it"),
		prefix:    fs.String("prefix", store.DefaultPrefix, "key prefix in etcd"),
	}
}

func (o *storeOpts) config(endpoints []string) store.Config {
	return store.Config{
		Endpoints: endpoints,
		CertFile:  *o.cert, KeyFile: *o.key, CAFile: *o.ca,
		Username: *o.user, Password: o.password.Value(),
		AllowPlaintextPassword: *o.plaintext,
	}
}

func (o *storeOpts) keys() store.Keys { return store.NewKeys(*o.prefix) }

// logOpts choose the log level and format.
type logOpts struct {
	level  *string
	format *string
}

func addLog(fs *flag.FlagSet) *logOpts {
	return &logOpts{
		level:  fs.String("log-level", "info", "debug, info, warn or error"),
		format: fs.String("log-format", "text", "text or json"),
	}
}

func (o *logOpts) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*o.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", *o.level, err)
	}
	hopts := &slog.HandlerOptions{Level: lvl}
	switch *o.format {
	case "text":
		return redact.Logger(slog.New(slog.NewTextHandler(w, hopts))), nil
	case "json":
		return redact.Logger(slog.New(slog.NewJSONHandler(w, hopts))), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", *o.format)
}

// reporterOpts configure the reporter stage.
type reporterOpts struct {
	host       *string
	dockerHost *string
	labels     *listFlag
	advertise  *string
	beatTTL    *time.Duration
}

func addReporter(fs *flag.FlagSet, e env) *reporterOpts {
	host, _ := os.Hostname()
	return &reporterOpts{
		host:       fs.String("host", host, "this reporter's host name; it owns the records under containers/<host>/"),
		dockerHost: fs.String("docker-host", e.get("DOCKER_HOST"), "Docker daemon socket (defaults to DOCKER_HOST, else the local socket)"),
		labels:     newList().list(fs, "label-filter", "only report containers carrying these labels (key or key=value, comma separated; all must match), like `docker ps --filter label=`"),
		beatTTL:    durationFlag(fs, "heartbeat-ttl", hosts.DefaultTTL, "TTL of the etcd lease the host's heartbeat is bound to: the host shows as stale this long after its reporter stopped following Docker or reaching etcd (docs/reporter.md)"),
		advertise:  fs.String("advertise-addr", "", "IP address proxies on other hosts reach this host's published ports at (docs/reporter.md); empty: none, containers are reached at their container addresses only"),
	}
}

// advertiseAddr is --advertise-addr, checked; the zero address when empty.
func (o *reporterOpts) advertiseAddr() (netip.Addr, error) {
	if *o.advertise == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(*o.advertise)
	if err == nil {
		err = reporter.CheckAdvertiseAddr(a)
	}
	if err != nil {
		return netip.Addr{}, fmt.Errorf("--advertise-addr %q: %w", *o.advertise, err)
	}
	return a, nil
}

// nginxOpts configure the nginx stage.
type nginxOpts struct {
	network     *string
	node        *string
	hostExpiry  *time.Duration
	httpAddrs   *listFlag
	httpsAddrs  *listFlag
	template    *string
	includeDir  *string
	trusted     *listFlag
	maxReqs     *int
	debounce    *time.Duration
	maxGap      *time.Duration
	binary      *string
	pidFile     *string
	reloadCmd   *string
	mainConf    *string
	confOut     *string
	instance    *string
	allowed     *listFlag
	dynamic     *string
	modulesDir  *string
	user        *string
	siteMetrics *bool
	accessLog   *string
	logQuery    *bool
	http3       *string
	authDir     *string
}

func addNginx(fs *flag.FlagSet) *nginxOpts {
	host, _ := os.Hostname()
	return &nginxOpts{
		network:     fs.String("network", "", "Docker network the proxy shares with the containers; its addresses are used when a container has several"),
		hostExpiry:  addHostExpiry(fs),
		node:        fs.String("node", "", "the reporter host (--host) this proxy runs on: containers of other hosts whose reporter has --advertise-addr are reached at that address and a published port (docs/reporter.md); empty: every container is reached at its container address (run: its --host)"),
		httpAddrs:   newList(":80").list(fs, "http-addr", "HTTP listen addresses, comma separated"),
		httpsAddrs:  newList(":443").list(fs, "https-addr", "HTTPS listen addresses, comma separated; empty turns TLS off"),
		template:    fs.String("template", "", "text/template file that replaces the built-in config template (its \"vhost\" template runs per vhost; see docs/nginx.md)"),
		includeDir:  fs.String("include-dir", "", "directory of per-vhost extra config: <dir>/<vhost>/*.conf is included in that vhost's server block"),
		trusted:     newList().list(fs, "trusted-proxies", "CIDRs or addresses of proxies in front of nginx whose X-Forwarded-For is believed (nginx realip); empty: upstreams get the connection's address, never a client-supplied one"),
		maxReqs:     fs.Int("max-requests-per-client", render.DefaultMaxRequestsPerClient, "requests one client address may have in progress at once (websockets and HTTP/2 streams count, idle keep-alive connections do not); the next gets 429; 0 turns the limit off (docs/nginx.md)"),
		debounce:    durationFlag(fs, "debounce", 0, "wait this long after a change for more before applying it; 0 means 2ms on the dynamic path, 25ms otherwise"),
		maxGap:      durationFlag(fs, "reload-max-gap", 2*time.Second, "during a burst of changes, reloads are spaced by a gap that doubles up to this (the dynamic path's pushes: up to 50ms)"),
		binary:      fs.String("nginx-binary", "nginx", "nginx executable"),
		pidFile:     fs.String("nginx-pid-file", "", "external mode: reload the nginx whose master pid is in this file, instead of running one"),
		reloadCmd:   fs.String("nginx-reload-cmd", "", "external mode: command that reloads nginx (split on spaces, no shell), instead of running one"),
		mainConf:    fs.String("nginx-main-conf", "/etc/nginx/nginx.conf", "external mode: the main config `nginx -t` checks; it must include --nginx-conf"),
		confOut:     fs.String("nginx-conf", "", "external mode: where to write Portico's generated config (default <data-dir>/nginx/portico.conf)"),
		instance:    fs.String("instance", host, "name of this nginx stage in the store's status keys"),
		allowed:     addAllowedDomains(fs),
		dynamic:     fs.String("nginx-dynamic", "auto", "serve routes and certificates from nginx's shared memory, pushed without reloads (docs/nginx.md): on, off, or auto (on when nginx's Lua module is installed and neither --template nor --include-dir nor external mode is used)"),
		modulesDir:  fs.String("nginx-modules-dir", nginx.DefaultModulesDir, "where nginx's dynamic modules (ndk, Lua) are"),
		http3:       fs.String("http3", nginx.HTTP3Auto, "serve HTTPS sites over HTTP/3 (QUIC, UDP on the --https-addr ports) too, advertised with Alt-Svc: auto (when nginx is built with http_v3_module), on (fail without it) or off (docs/nginx.md)"),
		user:        fs.String("nginx-user", defaultNginxUser, "run as root: the account nginx's workers run as, which nothing else may use (it must exist: "+createAccountCommand(defaultNginxUser)+"); ignored when not root or in external mode"),
		siteMetrics: fs.Bool("site-metrics", true, "count each site's requests, errors, bytes and latency in nginx, for the Prometheus metrics and the page's charts (needs nginx's Lua module; docs/metrics.md)"),
		accessLog:   fs.String("access-log", "", "write one JSON line per request to this file (- for standard output); empty: no access log. SIGUSR1 to Portico reopens it after a rotation (docs/access-log.md)"),
		logQuery:    fs.Bool("access-log-query", false, "keep query strings in the access log's path (they may hold tokens)"),
		authDir:     fs.String("auth-dir", "", "directory of htpasswd files (bcrypt or SHA-crypt hashes) that portico.auth-file labels name by bare file name; Portico copies them where only nginx's workers read them (docs/labels.md)"),
	}
}

// dynamicPath resolves --nginx-dynamic.
func (o *nginxOpts) dynamicPath() (bool, error) {
	staticOnly := o.external() || *o.template != "" || *o.includeDir != ""
	return resolveDynamic(*o.dynamic, staticOnly, func() bool { return nginx.LuaAvailable(*o.modulesDir) })
}

// resolveDynamic decides --nginx-dynamic: on and off are kept; auto is on
// unless the stage must stay static (external mode, a template, an include
// dir) or nginx has no Lua module.
func resolveDynamic(mode string, staticOnly bool, luaAvailable func() bool) (bool, error) {
	switch mode {
	case "on":
		return true, nil
	case "off":
		return false, nil
	case "auto", "":
		return !staticOnly && luaAvailable(), nil
	}
	return false, fmt.Errorf("--nginx-dynamic %q: want on, off or auto", mode)
}

// accessLogPath resolves --access-log: "" off, "-" standard output,
// otherwise an absolute path.
func (o *nginxOpts) accessLogPath() (string, error) {
	switch p := *o.accessLog; p {
	case "":
		return "", nil
	case "-":
		return nginx.StdoutLog, nil
	default:
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", fmt.Errorf("--access-log %q: %w", p, err)
		}
		return abs, nil
	}
}

// maxRequestsPerClient is --max-requests-per-client, checked.
func (o *nginxOpts) maxRequestsPerClient() (int, error) {
	if err := render.CheckMaxRequestsPerClient(*o.maxReqs); err != nil {
		return 0, fmt.Errorf("--max-requests-per-client: %w", err)
	}
	return *o.maxReqs, nil
}

func (o *nginxOpts) external() bool { return *o.pidFile != "" || *o.reloadCmd != "" }

func (o *nginxOpts) reloadCommand() []string { return strings.Fields(*o.reloadCmd) }

// certsOpts configure the certs stage.
type certsOpts struct {
	directory       *string
	staging         *bool
	email           *string
	eabKID          *string
	eabHMAC         *secretFlag
	caRoots         *string
	keyType         *string
	dnsProvider     *listFlag
	dnsResolvers    *listFlag
	propagation     *time.Duration
	skipAuthNS      *bool
	wildcardDomains *listFlag
	domainsFile     *string
	domainsOut      *string
	issuer          *string
	renewCheck      *time.Duration
	localCADomains  *listFlag
	challenge       *listFlag
}

func addCerts(fs *flag.FlagSet) *certsOpts {
	return &certsOpts{
		directory:       fs.String("acme-directory", "", "ACME directory URL (default Let's Encrypt production)"),
		staging:         fs.Bool("acme-staging", false, "use Let's Encrypt's staging directory"),
		email:           fs.String("acme-email", "", "contact email for the ACME account"),
		eabKID:          fs.String("acme-eab-kid", "", "external account binding key id"),
		eabHMAC:         addSecret(fs, "acme-eab-hmac", "external account binding HMAC key (base64url)"),
		caRoots:         fs.String("acme-ca-roots", "", "PEM file of extra roots trusted for the ACME directory's TLS"),
		keyType:         fs.String("acme-key-type", "ec256", "certificate key type: ec256, ec384, rsa2048, rsa3072, rsa4096"),
		challenge:       newList().list(fs, "acme-challenge", "ACME challenge: auto (dns-01 for names a --dns-provider covers, http-01 for the rest), http-01 or dns-01; or per zone: example.com=http-01,example.org=dns-01. http-01 needs the proxies' port 80 reachable from the CA"),
		dnsProvider:     newList().list(fs, "dns-provider", "lego DNS provider for dns-01, e.g. cloudflare, or per zone: example.com=cloudflare,example.org=dnsupdate; credentials come from the provider's own environment variables"),
		dnsResolvers:    newList().list(fs, "dns-resolvers", "host:port of DNS resolvers used to check propagation"),
		propagation:     durationFlag(fs, "dns-propagation-timeout", 0, "how long to wait for the TXT record to propagate (0: the provider's default)"),
		skipAuthNS:      fs.Bool("dns-skip-authoritative-check", false, "do not wait for the zone's authoritative nameservers (port 53) to serve the challenge; for a private DNS, with --dns-resolvers"),
		wildcardDomains: newList().list(fs, "wildcard-domains", "domains whose direct subdomains share one *.<domain> certificate"),
		domainsFile:     fs.String("domains-file", "", "standalone mode: read the certificate list from this dehydrated-style domains.txt instead of the container records"),
		domainsOut:      fs.String("domains-out", "", "also write the derived certificate list to this dehydrated-style domains.txt"),
		issuer:          fs.String("issuer", "auto", "auto (local CA for .localhost .test .internal .local, ACME otherwise), acme, or local"),
		renewCheck:      durationFlag(fs, "renew-check-interval", time.Hour, "how often certificates are checked for renewal"),
		localCADomains:  newList().list(fs, "local-ca-domains", "domains the local CA's root may certify besides .localhost .test .internal .local (its critical name constraints); needed for other names with --issuer local"),
	}
}

// metricsOpts serve Prometheus metrics.
func addMetrics(fs *flag.FlagSet) *string {
	return fs.String("metrics-addr", "", "serve Prometheus metrics at http://<addr>/metrics (empty: off)")
}

func addDataDir(fs *flag.FlagSet, def string) *string {
	return fs.String("data-dir", def, "Portico's state: embedded etcd, generated nginx config, certificate files")
}

// addHostExpiry is --host-expiry, read by every command that builds routes
// for nginx or shows them (nginx, run, status, ui).
func addHostExpiry(fs *flag.FlagSet) *time.Duration {
	return durationFlag(fs, "host-expiry", hosts.DefaultExpiry, "how long after a Docker host was last seen (its heartbeat lost) its containers stop being routed; until then they are served and marked stale; 0 or less: never (docs/reporter.md)")
}
