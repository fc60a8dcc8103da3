package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/challenge"
	legolog "github.com/go-acme/lego/v5/log"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/certs"
	"github.com/portico/portico/internal/certs/acme"
	"github.com/portico/portico/internal/certs/dnsproviders"
	"github.com/portico/portico/internal/http01"
	"github.com/portico/portico/internal/nginx"
	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/redact"
	"github.com/portico/portico/internal/reporter"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/storehealth"
)

func cmdRun(ctx context.Context, args []string, e env, stderr io.Writer) error {
	c := newCommand("run", "Run every stage in one process: an embedded etcd (unless --etcd-endpoints is given), the reporter, the certs stage and the nginx stage with a supervised nginx.", stderr)
	so := addStore(c.fs)
	lo := addLog(c.fs)
	metricsAddr := addMetrics(c.fs)
	dataDir := addDataDir(c.fs, defaultDataDir)
	ro := addReporter(c.fs, e)
	no := addNginx(c.fs)
	co := addCerts(c.fs)
	uo := addUI(c.fs, "", no.network, no.allowed)
	uo.node, uo.hostExpiry = no.node, no.hostExpiry
	mo := addMemory(c.fs)
	if err := c.parse(args, e); err != nil {
		return err
	}
	if *no.node == "" {
		// The proxy runs on this reporter's host.
		*no.node = *ro.host
	}
	if err := uo.check(); err != nil {
		return err
	}
	log, err := lo.logger(stderr)
	if err != nil {
		return err
	}
	c.logWarnings(log)
	memAttrs, err := mo.apply(e)
	if err != nil {
		return err
	}
	// The data dir is the store's only door: the embedded etcd serves on a
	// unix socket in it, so it must be the owner's alone.
	loose, err := store.PrepareDataDir(*dataDir)
	if err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	if loose != 0 {
		log.Warn("data dir was open to other users; tightened it", "dir", *dataDir, "was", fmt.Sprintf("%04o", loose), "now", "0700")
	}
	release, err := lockDataDir(*dataDir)
	if err != nil {
		return err
	}
	defer release()
	reg := newRegistry()
	stages := map[string]stage{}
	endpoints := so.endpoints.vals
	var emb *etcdSupervisor
	if len(endpoints) == 0 {
		// etcd runs in a child process, supervised as a stage beside the
		// others: nginx serves its last good config even while etcd starts
		// slowly, fails, panics or exits. Its endpoint, a unix socket in
		// the data dir, is known before it starts.
		ep, err := store.EmbeddedEndpoint(*dataDir)
		if err != nil {
			return err
		}
		emb, err = newEtcdSupervisor(*dataDir, reg, log)
		if err != nil {
			return err
		}
		defer emb.Close() // after the stages and the client (deferred below)
		endpoints = []string{ep}
		stages["etcd"] = emb
	}
	cli, err := store.Connect(so.config(endpoints))
	if err != nil {
		return err
	}
	defer cli.Close()

	rep, err := newReporter(ro, so, cli, reg, log)
	if err != nil {
		return err
	}
	tmp, err := workerTempDir(no, os.Geteuid(), *dataDir)
	if err != nil {
		return err
	}
	ng, err := newNginx(no, so, *dataDir, tmp, cli, reg, log)
	if err != nil {
		return err
	}
	if emb != nil {
		emb.after, emb.afterWait = ng.Started(), 10*time.Second
	}
	cs, err := newCerts(co, so, no, cli, reg, log)
	if err != nil {
		return err
	}
	probe, err := newStoreProbe(so.keys().NginxStatus(*no.instance), cli, reg, log)
	if err != nil {
		return err
	}
	metricsAt, err := serveMetrics(ctx, *metricsAddr, reg, probe, log)
	if err != nil {
		return err
	}
	stages["reporter"], stages["nginx"], stages["certs"] = rep, ng, cs
	stages["storehealth"] = probe
	stages["reopen"] = reopenOnSignal{ng: ng, log: log}
	stages["memory"] = newMemTrimmer(log)
	attrs := startupAttrs(no.httpAddrs.vals, no.httpsAddrs.vals, metricsAt, endpoints, stages["etcd"] != nil, *dataDir)
	attrs = append(attrs, memAttrs...)
	var health func() *store.EmbeddedHealth
	if emb != nil {
		health = func() *store.EmbeddedHealth { h := emb.Health(); return &h }
	}
	page, err := newUI(uo, so, cli, health, ng.Traffic(), log)
	if err != nil {
		return err
	}
	if page != nil {
		if emb != nil {
			emb.onChange = page.Refresh
		}
		stages["ui"] = page
		attrs = append(attrs, "ui", "http://"+page.Addr()+"/")
	}
	started := time.Now()
	log.Info("portico started", attrs...)
	err = runStages(ctx, log, stages)
	lvl := slog.LevelInfo
	if err != nil {
		lvl = slog.LevelError
	}
	log.Log(context.Background(), lvl, "portico stopped", "reason", stopReason(ctx, err), "uptime", time.Since(started).Round(time.Millisecond))
	return err
}

func cmdReporter(ctx context.Context, args []string, e env, stderr io.Writer) error {
	c := newCommand("reporter", "Watch this host's Docker daemon and keep one record per container in etcd. The only stage that opens the Docker socket.", stderr)
	so := addStore(c.fs)
	lo := addLog(c.fs)
	metricsAddr := addMetrics(c.fs)
	ro := addReporter(c.fs, e)
	if err := c.parse(args, e); err != nil {
		return err
	}
	return runOne(ctx, c, so, lo, *metricsAddr, "", stderr, "reporter", so.keys().HostAlive(*ro.host), func(cli *clientv3.Client, reg *prometheus.Registry, log *slog.Logger) (stage, error) {
		return newReporter(ro, so, cli, reg, log)
	})
}

func cmdNginx(ctx context.Context, args []string, e env, stderr io.Writer) error {
	c := newCommand("nginx", "Render nginx config from the records and certificates in etcd, check it with nginx -t, swap it in and reload nginx (its own, or an external one).", stderr)
	so := addStore(c.fs)
	lo := addLog(c.fs)
	metricsAddr := addMetrics(c.fs)
	dataDir := addDataDir(c.fs, defaultDataDir)
	no := addNginx(c.fs)
	if err := c.parse(args, e); err != nil {
		return err
	}
	tmp, err := workerTempDir(no, os.Geteuid(), *dataDir)
	if err != nil {
		return err
	}
	return runOne(ctx, c, so, lo, *metricsAddr, *dataDir, stderr, "nginx", so.keys().NginxStatus(*no.instance), func(cli *clientv3.Client, reg *prometheus.Registry, log *slog.Logger) (stage, error) {
		ng, err := newNginx(no, so, *dataDir, tmp, cli, reg, log)
		if err != nil {
			return nil, err
		}
		return withReopen{Stage: ng, reopen: reopenOnSignal{ng: ng, log: log}}, nil
	})
}

func cmdCerts(ctx context.Context, args []string, e env, stderr io.Writer) error {
	c := newCommand("certs", "Derive the certificates the containers need, obtain them by ACME (http-01 answered by every proxy, or dns-01) or from the local CA, store them in etcd and renew them.\n\nDNS providers: "+strings.Join(dnsproviders.Codes(), " "), stderr)
	so := addStore(c.fs)
	lo := addLog(c.fs)
	metricsAddr := addMetrics(c.fs)
	no := &nginxOpts{network: c.fs.String("network", "", "the proxy's Docker network, as given to the nginx stage"), allowed: addAllowedDomains(c.fs), hostExpiry: addHostExpiry(c.fs)}
	co := addCerts(c.fs)
	if err := c.parse(args, e); err != nil {
		return err
	}
	return runOne(ctx, c, so, lo, *metricsAddr, "", stderr, "certs", so.keys().CertsWanted(), func(cli *clientv3.Client, reg *prometheus.Registry, log *slog.Logger) (stage, error) {
		return newCerts(co, so, no, cli, reg, log)
	})
}

// runOne runs a single stage against an external etcd (or, with only
// --data-dir, the embedded one of a running `portico run`), with a probe
// of the store that reads probeKey (one the stage's etcd role may read).
func runOne(ctx context.Context, c *command, so *storeOpts, lo *logOpts, metricsAddr, dataDir string, stderr io.Writer, name, probeKey string,
	build func(*clientv3.Client, *prometheus.Registry, *slog.Logger) (stage, error)) error {
	log, err := lo.logger(stderr)
	if err != nil {
		return err
	}
	c.logWarnings(log)
	if len(so.endpoints.vals) == 0 && dataDir == "" {
		return errors.New("--etcd-endpoints is required")
	}
	cli, err := connect(so, dataDir)
	if err != nil {
		return err
	}
	defer cli.Close()
	reg := newRegistry()
	s, err := build(cli, reg, log)
	if err != nil {
		return err
	}
	probe, err := newStoreProbe(probeKey, cli, reg, log)
	if err != nil {
		return err
	}
	if _, err := serveMetrics(ctx, metricsAddr, reg, probe, log); err != nil {
		return err
	}
	err = runStages(ctx, log, map[string]stage{name: s, "storehealth": probe})
	lvl := slog.LevelInfo
	if err != nil {
		lvl = slog.LevelError
	}
	log.Log(context.Background(), lvl, "portico stopped", "command", name, "reason", stopReason(ctx, err))
	return err
}

// newStoreProbe tells whether this process reaches the store: metrics,
// /readyz and a log line on each change (internal/storehealth).
func newStoreProbe(key string, cli *clientv3.Client, reg prometheus.Registerer, log *slog.Logger) (*storehealth.Probe, error) {
	return storehealth.New(storehealth.Config{Key: key, Metrics: reg}, cli, log.With("stage", "storehealth"))
}

func newReporter(ro *reporterOpts, so *storeOpts, cli *clientv3.Client, reg prometheus.Registerer, log *slog.Logger) (*reporter.Reporter, error) {
	adv, err := ro.advertiseAddr()
	if err != nil {
		return nil, err
	}
	return reporter.New(reporter.Config{
		DockerHost:    *ro.dockerHost,
		AdvertiseAddr: adv,
		Liveness:      cli,
		HeartbeatTTL:  *ro.beatTTL,
		Host:          *ro.host,
		Labels:        ro.labels.vals,
		Keys:          so.keys(),
		Metrics:       reg,
	}, cli, log.With("stage", "reporter"))
}

func newNginx(no *nginxOpts, so *storeOpts, dataDir, tempDir string, cli *clientv3.Client, reg prometheus.Registerer, log *slog.Logger) (*nginx.Stage, error) {
	ropts, err := routingOptions(*no.network, no.allowed)
	if err != nil {
		return nil, err
	}
	ropts.Node = *no.node
	cfg := nginx.Config{
		Keys:           so.keys(),
		Routing:        ropts,
		HostExpiry:     hostExpiry(*no.hostExpiry),
		Dir:            nginxDir(dataDir),
		TempDir:        tempDir,
		TemplatePath:   *no.template,
		IncludeDir:     *no.includeDir,
		HTTPAddrs:      no.httpAddrs.vals,
		HTTPSAddrs:     no.httpsAddrs.vals,
		Debounce:       *no.debounce,
		MaxReloadGap:   *no.maxGap,
		NginxBinary:    *no.binary,
		Instance:       *no.instance,
		Metrics:        reg,
		PidFile:        *no.pidFile,
		ReloadCommand:  no.reloadCommand(),
		HTTP3:          *no.http3,
		AllowedDomains: no.allowed.vals,
		AuthDir:        *no.authDir,
	}
	trusted, err := render.ParseTrustedProxies(no.trusted.vals)
	if err != nil {
		return nil, fmt.Errorf("--trusted-proxies: %w", err)
	}
	cfg.TrustedProxies = trusted
	if cfg.MaxRequestsPerClient, err = no.maxRequestsPerClient(); err != nil {
		return nil, err
	}
	acct, warning, err := resolveWorkerUser(*no.user, os.Geteuid(), no.external(), lookupAccount)
	if err != nil {
		return nil, err
	}
	if warning != "" {
		log.Warn(warning)
	}
	cfg.WorkerUser, cfg.WorkerGroup = acct.User, acct.Group
	if cfg.Dynamic, err = no.dynamicPath(); err != nil {
		return nil, err
	}
	cfg.ModulesDir = *no.modulesDir
	cfg.Traffic = *no.siteMetrics
	if cfg.AccessLog, err = no.accessLogPath(); err != nil {
		return nil, err
	}
	cfg.AccessLogQuery = *no.logQuery
	if no.external() {
		cfg.Mode = nginx.ModeExternal
		cfg.MainConfig = *no.mainConf
		cfg.ConfPath = *no.confOut
		if cfg.ConfPath == "" {
			cfg.ConfPath = filepath.Join(cfg.Dir, "portico.conf")
		}
	}
	return nginx.New(cfg, cli, log.With("stage", "nginx"))
}

func newCerts(co *certsOpts, so *storeOpts, no *nginxOpts, cli *clientv3.Client, reg prometheus.Registerer, log *slog.Logger) (*certs.Stage, error) {
	log = log.With("stage", "certs")
	ropts, err := routingOptions(*no.network, no.allowed)
	if err != nil {
		return nil, err
	}
	cfg := certs.Config{
		Keys:            so.keys(),
		Routing:         ropts,
		HostExpiry:      certsHostExpiry(no),
		Issuer:          *co.issuer,
		WildcardDomains: co.wildcardDomains.vals,
		DomainsFile:     *co.domainsFile,
		DomainsOut:      *co.domainsOut,
		CheckInterval:   *co.renewCheck,
		Metrics:         reg,
	}
	if cfg.Issuer == "auto" {
		cfg.Issuer = certs.IssuerAuto
	}
	for _, d := range co.localCADomains.vals {
		n, err := certs.NormalizeName(d)
		if err == nil && strings.HasPrefix(n, "*.") {
			err = errors.New("give the domain without *.")
		}
		if err != nil {
			return nil, fmt.Errorf("--local-ca-domains %q: %w", d, err)
		}
		cfg.LocalCA.Domains = append(cfg.LocalCA.Domains, n)
	}
	if cfg.Issuer == certs.IssuerLocal && len(cfg.LocalCA.Domains) == 0 {
		log.Warn("--issuer local without --local-ca-domains: the local CA's root may only certify names under .localhost, .test, .internal and .local; certificates for other names fail until their domains are listed")
	}
	iss, err := newACME(co, so, cli, log)
	if err != nil {
		return nil, err
	}
	cfg.ACME = iss
	if len(co.dnsProvider.vals) == 0 && cfg.Issuer != certs.IssuerLocal {
		log.Info("no --dns-provider: public names are validated by ACME http-01, answered by every proxy on port 80; wildcards need a DNS provider")
	}
	return certs.New(cfg, cli, log)
}

func newACME(co *certsOpts, so *storeOpts, cli *clientv3.Client, log *slog.Logger) (*acme.Issuer, error) {
	providers, err := parseProviders(co.dnsProvider.vals, dnsproviders.New)
	if err != nil {
		return nil, err
	}
	challenges, err := acme.ParseChallenges(co.challenge.vals)
	if err != nil {
		return nil, err
	}
	dir := *co.directory
	switch {
	case dir != "" && *co.staging:
		return nil, errors.New("--acme-directory and --acme-staging: give one")
	case *co.staging:
		dir = acme.LetsEncryptStaging
	}
	var roots []byte
	if *co.caRoots != "" {
		if roots, err = os.ReadFile(*co.caRoots); err != nil {
			return nil, fmt.Errorf("--acme-ca-roots: %w", err)
		}
	}
	if len(co.dnsResolvers.vals) > 0 {
		acme.SetLegoResolvers(co.dnsResolvers.vals)
	}
	// lego logs through its own process-wide logger (stdout by default);
	// send it through ours, redacted: its warnings quote provider errors,
	// and those quote request URLs with tokens.
	legolog.SetDefault(redact.Logger(log.With("component", "lego")))
	return acme.New(acme.Config{
		DirectoryURL:                dir,
		Email:                       *co.email,
		EABKeyID:                    *co.eabKID,
		EABHMAC:                     co.eabHMAC.Value(),
		KeyType:                     *co.keyType,
		CARoots:                     roots,
		Providers:                   providers,
		HTTP01:                      http01.NewProvider(cli, http01.ProviderConfig{Keys: so.keys()}, log.With("component", "http-01")),
		Challenges:                  challenges,
		Resolvers:                   co.dnsResolvers.vals,
		PropagationTimeout:          *co.propagation,
		DisableAuthoritativeNSCheck: *co.skipAuthNS,
		UserAgent:                   "portico/" + versionOf(debug.ReadBuildInfo()).short(),
		Keys:                        so.keys(),
	}, cli, log)
}

// parseProviders turns --dns-provider values into zone -> provider:
// "cloudflare" is the default for every zone, "example.com=dnsupdate" one
// zone's. It is pure but for the constructor, which reads the provider's
// own environment variables.
func parseProviders(vals []string, build func(string) (challenge.Provider, error)) (map[string]challenge.Provider, error) {
	out := map[string]challenge.Provider{}
	for _, v := range vals {
		zone, code, ok := strings.Cut(v, "=")
		if !ok {
			zone, code = "", v
		}
		zone = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(zone)), ".")
		code = strings.TrimSpace(code)
		if code == "" {
			return nil, fmt.Errorf("--dns-provider %q: no provider name", v)
		}
		if _, dup := out[zone]; dup {
			return nil, fmt.Errorf("--dns-provider %q: zone %q given twice", v, zone)
		}
		p, err := build(code)
		if err != nil {
			return nil, fmt.Errorf("--dns-provider %q: %w", v, err)
		}
		out[zone] = p
	}
	return out, nil
}

// hostExpiry turns --host-expiry into the stages' setting, where 0 means
// the default: 0 or less given means never (-1).
func hostExpiry(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// certsHostExpiry is the --host-expiry the certs stage judges hosts with:
// run's (the nginx stage's) or the certs command's own.
func certsHostExpiry(no *nginxOpts) time.Duration {
	if no.hostExpiry == nil {
		return 0
	}
	return hostExpiry(*no.hostExpiry)
}
