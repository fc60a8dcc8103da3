package nginx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico/portico/internal/htpasswd"
	"github.com/portico/portico/internal/nginx/dynamic"
	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/nginx/supervise"
	"github.com/portico/portico/internal/redact"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/traffic"
)

// Modes of running nginx.
const (
	// ModeSupervised runs nginx as Portico's child with a generated main
	// config under Dir.
	ModeSupervised = "supervised"
	// ModeExternal writes ConfPath for an nginx run by someone else, whose
	// main config includes it in its http {} block.
	ModeExternal = "external"
)

// Config configures the nginx stage.
type Config struct {
	// Keys maps records to etcd keys.
	Keys store.Keys
	// Routing are the options routing.Build needs.
	Routing routing.Options
	// Dir is Portico's nginx dir: certs/ always; in supervised mode also
	// nginx.conf, portico.conf, temp/ and logs/. Created if missing.
	Dir string
	// TempDir (supervised) is where nginx workers buffer bodies; "" means
	// <Dir>/temp. Workers that run as another user must be able to enter it.
	TempDir string
	// WorkerUser and WorkerGroup (supervised, master run as root) are the
	// account nginx's workers run as; "" leaves nginx's default (see
	// MainConf.User).
	WorkerUser, WorkerGroup string
	// TemplatePath overrides the embedded template (read once, at New).
	TemplatePath string
	// IncludeDir, when set, is included per vhost: <IncludeDir>/<host>/*.conf.
	IncludeDir string
	// TrustedProxies: see Settings.TrustedProxies.
	TrustedProxies []netip.Prefix
	// MaxRequestsPerClient: see Settings.MaxRequestsPerClient (0: none).
	MaxRequestsPerClient int
	// HTTPAddrs are the HTTP listen addresses; empty means ":80".
	HTTPAddrs []string
	// HTTPSAddrs are the HTTPS listen addresses; empty means no TLS.
	HTTPSAddrs []string
	// Debounce is the quiet time after a change before applying; 0 means
	// 25ms. A continuous stream of changes still applies every 10 Debounce.
	Debounce time.Duration
	// MaxReloadGap caps the spacing of applies during a burst of changes
	// (see pacer); 0 means 2s. The dynamic path spaces its pushes by
	// pushMaxGap at most.
	MaxReloadGap time.Duration
	// NginxBinary is the nginx executable; "" means "nginx" from PATH.
	NginxBinary string
	// Mode is ModeSupervised ("" too) or ModeExternal.
	Mode string
	// PidFile (external) is nginx's pid file, signalled with SIGHUP to reload.
	PidFile string
	// ReloadCommand (external), instead of PidFile, is run to reload, e.g.
	// ["systemctl", "reload", "nginx"]; no shell.
	ReloadCommand []string
	// MainConfig (external) is the system's nginx.conf to test with
	// `nginx -t -c`; "" tests nginx's default.
	MainConfig string
	// ConfPath (external) is where portico.conf is written; the main config
	// must include it in http {}.
	ConfPath string
	// Instance names this stage's status key; "" means the host name.
	Instance string
	// Metrics, when set, receives the stage's metrics.
	Metrics prometheus.Registerer
	// IsolateProbes bounds the `nginx -t` runs spent finding the routes a
	// refused config fails with; 0 means 24.
	IsolateProbes int
	// Dynamic serves routes and certificates on the dynamic path
	// (docs/nginx.md): supervised mode, the embedded template and no
	// include dir only; nginx needs the Lua module (LuaModules).
	Dynamic bool
	// ModulesDir is where nginx's dynamic modules are; "" means
	// DefaultModulesDir.
	ModulesDir string
	// ACMEDir (static path) is where pending ACME http-01 challenges are
	// written for nginx's workers to read (docs/acme.md); "" means
	// <TempDir>/acme when TempDir is set (workers may enter it), else
	// <Dir>/acme.
	ACMEDir string
	// HTTP3 is HTTP3Auto ("" too), HTTP3On or HTTP3Off: whether HTTPS
	// sites are also served over QUIC (DecideHTTP3).
	HTTP3 string
	// AllowedDomains are the --allowed-domains entries Routing.Allowed was
	// parsed from, published with the stage's settings.
	AllowedDomains []string
	// AuthDir is the operator's directory of htpasswd files
	// (--auth-dir) that portico.auth-file names; "" has none, and a site
	// with portico.auth-file refuses every user.
	AuthDir string
	// HostExpiry is how long after a Docker host was last seen its
	// records stop being routed (internal/hosts); until then a host whose
	// heartbeat is gone is stale and still served. 0 means
	// hosts.DefaultExpiry; negative: never.
	HostExpiry time.Duration
	// Traffic counts each site's requests in nginx (docs/metrics.md):
	// exported to Metrics and charted by the page (Stage.Traffic). It
	// needs the Lua module and supervised mode; without them the stage
	// logs why and counts nothing.
	Traffic bool
	// AccessLog, when set, is the file nginx writes one JSON line per
	// request to (docs/access-log.md); StdoutLog writes to Portico's
	// standard output. AccessLogQuery keeps query strings in it.
	AccessLog      string
	AccessLogQuery bool
}

// Client is the part of the etcd client the stage uses.
type Client interface {
	store.Watcher
	store.KV
}

// Stage is the nginx stage.
type Stage struct {
	cfg      Config
	cli      Client
	log      *slog.Logger
	settings render.Settings
	certs    *render.CertFiles
	applier  *Applier
	sup      *supervise.Supervisor // nil in external mode
	pusher   *dynamic.Pusher       // nil unless cfg.Dynamic
	acme     *acmeSync
	auth     *htpasswd.Copier // portico.auth-file's copies (auth.go)
	traffic  *traffic.Monitor // nil unless nginx counts traffic
	m        *metrics

	decodedC  map[string]decoded[store.Container]
	decodedB  map[string]decoded[store.CertBundle]
	logged    map[string]bool // problems already logged
	status    *store.NginxStatus
	iso       *isolated                // the last search for failing routes
	inService map[string]routing.Route // routes of the config in place
	last      applied                  // what the config in place was rendered from, for the reload log
	// settingsKey identifies the settings (the hash of an empty render);
	// settingsMarked says it was written next to the config this run.
	settingsKey    string
	settingsMarked bool
	// settingsConf is the config of the settings alone: on the dynamic
	// path, the whole config (routes are pushed, not rendered).
	settingsConf []byte
	reloads      atomic.Int64
	started      chan struct{} // see Started
	startedOnce  sync.Once
	syncs        atomic.Int64 // renders done, for tests
	inSync       atomic.Bool  // a render or apply is under way, for tests
	// mainConf (supervised) is nginx.conf's content; mainErr is why it
	// could not be written (nginx then runs the one on disk), retried
	// at each sync.
	mainConf []byte
	mainErr  error
	// http3Off is why HTTP/3 is off ("" when on), for the status.
	http3Off string
	// published: the settings record was written (publishSettings).
	published bool
	// hosts is the stage's view of host liveness (hostsview.go).
	hosts *hostsView
	// memo keeps each record's parse between syncs: a change parses the
	// changed records alone.
	memo *routing.Memo
	// inc is the dynamic path's routing build (memo the static path's):
	// a change works again on the vhosts it touches.
	inc *routing.Incremental
	// tables keeps each route's checks and table lines between syncs of
	// the dynamic path: a change checks and encodes its own routes.
	tables render.TableCache
}

// New checks cfg and prepares the stage; Run does the work.
func New(cfg Config, cli Client, log *slog.Logger) (*Stage, error) {
	if cfg.Dir == "" {
		return nil, errors.New("nginx: no dir")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("nginx dir %s: %w", cfg.Dir, err)
	}
	cfg.Dir = dir
	if cfg.MaxReloadGap <= 0 {
		cfg.MaxReloadGap = 2 * time.Second
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = 25 * time.Millisecond
		if cfg.Dynamic {
			// A push costs little and reloads nothing.
			cfg.Debounce = 2 * time.Millisecond
		}
	}
	if cfg.NginxBinary == "" {
		cfg.NginxBinary = "nginx"
	}
	if cfg.Instance == "" {
		if cfg.Instance, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("nginx: instance name: %w", err)
		}
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	s := &Stage{cfg: cfg, cli: cli, log: log, m: m,
		decodedC: map[string]decoded[store.Container]{}, decodedB: map[string]decoded[store.CertBundle]{}, logged: map[string]bool{},
		started: make(chan struct{}), memo: routing.NewMemo(cfg.Routing)}
	if s.hosts, err = newHostsView(cfg.HostExpiry, cfg.Metrics); err != nil {
		return nil, err
	}
	s.certs = &render.CertFiles{Dir: filepath.Join(dir, "certs")}
	acmeDir := cfg.ACMEDir
	switch {
	case acmeDir == "" && cfg.TempDir != "":
		acmeDir = filepath.Join(cfg.TempDir, "acme")
	case acmeDir == "":
		acmeDir = filepath.Join(dir, "acme")
	}
	s.acme = &acmeSync{dir: acmeDir, logged: map[string]bool{}}
	s.settings = render.Settings{HTTPAddrs: cfg.HTTPAddrs, HTTPSAddrs: cfg.HTTPSAddrs, IncludeDir: cfg.IncludeDir, TrustedProxies: cfg.TrustedProxies,
		MaxRequestsPerClient: cfg.MaxRequestsPerClient, ACMEDir: s.acme.dir}
	if s.auth, err = newAuthCopier(cfg, dir); err != nil {
		return nil, err
	}
	s.settings.AuthDir = s.auth.Dst
	if cfg.AccessLog != "" {
		s.settings.AccessLog = &render.AccessLog{Path: cfg.AccessLog, Query: cfg.AccessLogQuery}
	}
	if cfg.TemplatePath != "" {
		b, err := os.ReadFile(cfg.TemplatePath)
		if err != nil {
			return nil, fmt.Errorf("nginx template: %w", err)
		}
		s.settings.Template = string(b)
	}
	// -V: the version and the configure arguments (http_v3_module).
	out, err := exec.Command(cfg.NginxBinary, "-V").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("nginx binary %s: %w", cfg.NginxBinary, err)
	}
	ver, ok := render.VersionFromOutput(string(out))
	if !ok {
		return nil, fmt.Errorf("nginx binary %s: no version in %q", cfg.NginxBinary, supervise.OneLine(out))
	}
	s.settings.NginxVersion = ver
	if s.settings.HTTP3, s.http3Off, err = DecideHTTP3(cfg.HTTP3, string(out), cfg.HTTPSAddrs); err != nil {
		return nil, err
	}
	var modules []string
	if cfg.Dynamic {
		if modules, err = s.dynamicSetup(); err != nil {
			return nil, err
		}
		s.acme.control = s.pusher.Control
	}
	if modules, err = s.trafficSetup(modules); err != nil {
		return nil, err
	}
	// Settings errors are the operator's: fail now, not at the first render.
	if _, err := render.Render(render.Input{Settings: render.Settings{HTTPAddrs: s.settings.HTTPAddrs, HTTPSAddrs: s.settings.HTTPSAddrs,
		IncludeDir: s.settings.IncludeDir, NginxVersion: ver, TrustedProxies: s.settings.TrustedProxies,
		MaxRequestsPerClient: s.settings.MaxRequestsPerClient, HTTP3: s.settings.HTTP3}}); err != nil {
		return nil, fmt.Errorf("nginx settings: %w", err)
	}
	if empty, err := render.Render(render.Input{Settings: s.settings}); err == nil {
		s.settingsKey = Hash(empty)
		s.settingsConf = empty
	}

	switch cfg.Mode {
	case "", ModeSupervised:
		mc := render.MainConf{Prefix: dir, Include: filepath.Join(dir, "portico.conf"), TempDir: cfg.TempDir, Modules: modules,
			User: cfg.WorkerUser, Group: cfg.WorkerGroup}
		s.sup = &supervise.Supervisor{Binary: cfg.NginxBinary, Prefix: dir, Main: filepath.Join(dir, "nginx.conf"), Log: log}
		if s.settings.Dynamic != nil {
			s.sup.Sockets = []string{s.settings.Dynamic.ControlSocket}
		} else if s.settings.Traffic != nil {
			s.sup.Sockets = []string{s.settings.Traffic.ControlSocket}
		}
		if cfg.AccessLog == StdoutLog {
			s.sup.Stdout = os.Stdout
		}
		s.applier = &Applier{Binary: cfg.NginxBinary, ConfPath: mc.Include, Supervised: &mc, Reloader: s.sup}
	case ModeExternal:
		if cfg.ConfPath == "" {
			return nil, errors.New("nginx external mode: no config path to write")
		}
		if (cfg.PidFile == "") == (len(cfg.ReloadCommand) == 0) {
			return nil, errors.New("nginx external mode: give exactly one of a pid file and a reload command")
		}
		s.applier = &Applier{Binary: cfg.NginxBinary, ConfPath: cfg.ConfPath, TestMain: cfg.MainConfig,
			Reloader: supervise.ExternalReloader{PidFile: cfg.PidFile, Command: cfg.ReloadCommand}}
	default:
		return nil, fmt.Errorf("nginx mode %q: want %s or %s", cfg.Mode, ModeSupervised, ModeExternal)
	}
	return s, nil
}

// Reloads is the number of reloads a running nginx performed.
// Started is closed once the supervised nginx runs from its last good
// config, or once the stage found none (a first start: nginx then waits
// for the store), or at once in external mode, where Portico runs no
// nginx. `portico run` holds the embedded store back until then, so nginx
// starts before the store touches the disk.
func (s *Stage) Started() <-chan struct{} { return s.started }

// markStarted closes Started's channel (once).
func (s *Stage) markStarted() { s.startedOnce.Do(func() { close(s.started) }) }

func (s *Stage) Reloads() int { return int(s.reloads.Load()) }

// Run mirrors the records, applies every change and, in supervised mode,
// runs nginx. It returns when ctx ends (after stopping nginx) or on a
// setup error.
func (s *Stage) Run(ctx context.Context) error {
	if s.sup == nil {
		s.markStarted()
	}
	if err := s.prepareDirs(); err != nil {
		return err
	}
	notify := make(chan struct{}, 1)
	mc := store.NewMirror(s.cli, s.cfg.Keys.Containers(), notify, s.log)
	mb := store.NewMirror(s.cli, s.cfg.Keys.CertData(), notify, s.log)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { mc.Run(ctx) })
	wg.Go(func() { mb.Run(ctx) })
	// Pending http-01 challenges have their own mirrors and channel: a
	// token goes live at once, not after the routes' debounce.
	anotify := make(chan struct{}, 1)
	mt := store.NewMirror(s.cli, s.cfg.Keys.HTTP01Tokens(), anotify, s.log)
	mw := store.NewMirror(s.cli, s.cfg.Keys.CertsWanted(), anotify, s.log)
	wg.Go(func() { mt.Run(ctx) })
	wg.Go(func() { mw.Run(ctx) })
	defer s.closeACME()
	acmeRetry := time.NewTimer(time.Hour)
	acmeRetry.Stop()
	syncACME := func() {
		if s.syncACME(ctx, mt, mw) {
			acmeRetry.Reset(100 * time.Millisecond)
		}
	}
	wg.Go(func() { s.refreshAuth(ctx) })
	// The hosts' keys have their own channel: most of their changes (a
	// last-seen write each hour per host) change no host's state, and
	// cost no sync (hostsChanged).
	hnotify := make(chan struct{}, 1)
	s.hosts.mirror = store.NewMirror(s.cli, s.cfg.Keys.Hosts(), hnotify, s.log)
	wg.Go(func() { s.hosts.mirror.Run(ctx) })
	wg.Go(func() { s.runTraffic(ctx) })

	supDone := make(chan error, 1)
	supStarted := false
	startNginx := func() {
		if s.sup != nil && !supStarted {
			supStarted = true
			wg.Go(func() { supDone <- s.sup.Run(ctx) })
			go func() {
				select {
				case <-s.sup.Up():
					s.markStarted()
				case <-ctx.Done():
				}
			}()
		}
	}
	if err := s.startStatic(ctx, mc, mb, notify, startNginx, supDone); err != nil {
		return err
	}
	// A first sync that failed for a reason that passes (a full disk, etcd)
	// is retried like any other, not left for the next change.
	firstRetry := s.sync(ctx, mc, mb)

	if s.sup != nil {
		if s.applier.Current() == "" {
			// A first start, and the records give no config nginx accepts:
			// start with no routes (embedded template) so unknown hosts get
			// 404s; status says why.
			st := s.settings
			st.Template = ""
			conf, err := render.Render(render.Input{Settings: st})
			if err != nil {
				return fmt.Errorf("render empty config: %w", err)
			}
			if _, err := s.applier.Apply(ctx, conf); err != nil {
				return fmt.Errorf("apply empty config: %w", err)
			}
			s.markSettings()
		}
		startNginx()
	}

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var first, last time.Time
	pending := false
	if firstRetry > 0 {
		pending, first, last = true, time.Now(), time.Now()
		timer.Reset(firstRetry)
	}
	pace := pacer{debounce: s.cfg.Debounce, maxGap: s.cfg.MaxReloadGap}
	if s.pusher != nil {
		// Pushes reload nothing: a burst is spaced by pushMaxGap at most.
		pace.maxGap = min(pace.maxGap, pushMaxGap)
	}
	// Pushes before nginx first came up may have missed it: push again
	// then.
	var upC <-chan struct{}
	if s.pusher != nil {
		upC = s.sup.Up()
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-supDone:
			return err
		case <-upC:
			upC = nil
			pending, first, last = true, time.Now(), time.Now()
			timer.Reset(0)
			syncACME()
		case <-anotify:
			syncACME()
		case <-acmeRetry.C:
			syncACME()
		case <-hnotify:
			if s.hostsChanged(time.Now()) {
				select {
				case notify <- struct{}{}:
				default:
				}
			}
		case <-s.hosts.wake.C:
			// A stale host reached its expiry: its records leave.
			select {
			case notify <- struct{}{}:
			default:
			}
		case <-notify:
			now := time.Now()
			if !pending {
				pending, first = true, now
			}
			last = now
			pace.changed(now)
			timer.Reset(max(0, pace.due(first, last).Sub(now)))
		case <-timer.C:
			pending = false
			retry := s.sync(ctx, mc, mb)
			pace.applied(time.Now())
			syncACME()
			if retry > 0 {
				pending, first, last = true, time.Now(), time.Now()
				timer.Reset(retry)
			}
		}
	}
}

func (s *Stage) prepareDirs() error {
	if err := s.prepareDynamic(); err != nil {
		return err
	}
	if err := s.auth.Prepare(); err != nil {
		return err
	}
	if err := s.prepareTraffic(); err != nil {
		return err
	}
	dirs := []string{s.certs.Dir}
	if s.sup != nil {
		mc := *s.applier.Supervised
		dirs = append(dirs, mc.Dirs()...)
		main, err := mc.Render()
		if err != nil {
			return err
		}
		for _, d := range dirs {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("nginx dir: %w", err)
			}
		}
		s.mainConf = main
		return s.writeMain()
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("nginx dir: %w", err)
		}
	}
	return nil
}

// retryIn is how long to wait before retrying an apply that failed for a
// reason other than the config (a reload, a disk, etcd).
const retryIn = 2 * time.Second

// sync renders the mirrored records and applies the result. It returns a
// delay after which to retry, or 0.
func (s *Stage) sync(ctx context.Context, mc, mb *store.Mirror) time.Duration {
	s.inSync.Store(true)
	defer s.inSync.Store(false)
	defer s.syncs.Add(1)
	t0 := time.Now()
	containers := s.served(s.containers(mc), time.Now())
	t1 := time.Now()
	var res routing.Result
	var routes []routing.Route
	var errs []error
	var t2 time.Time
	if s.pusher != nil {
		// The dynamic path works on what changed: the vhosts the changed
		// records claim, and their routes' checks and table lines.
		if s.inc == nil {
			s.inc = routing.NewIncremental(s.cfg.Routing)
		}
		res = s.inc.Build(containers)
		t2 = time.Now()
		routes, errs = s.tables.CheckRoutes(res.Routes)
	} else {
		res = s.memo.Build(containers)
		t2 = time.Now()
		routes, errs = render.CheckRoutes(res.Routes)
	}
	refs, cerrs := s.certs.Sync(s.bundles(mb))
	t3 := time.Now()
	problems := make([]error, 0, len(res.Problems)+len(errs)+len(cerrs))
	for _, p := range res.Problems {
		problems = append(problems, p)
	}
	s.logErrors(append(append(problems, errs...), cerrs...))
	s.syncAuth(routes)

	st := store.NginxStatus{Instance: s.cfg.Instance}
	if s.status != nil {
		st = *s.status
	} else {
		st.HTTPAddrs, st.HTTPSAddrs, st.AppliedAt = s.listenAddrs()
	}
	var retry time.Duration
	s.retryMain()
	o := s.apply(ctx, routes, refs)
	t4 := time.Now()
	// The steps' times, to profile a large table (docs/scale.md).
	defer func() {
		s.log.Debug("nginx sync timing", "records", t1.Sub(t0), "build", t2.Sub(t1), "check", t3.Sub(t2), "apply", t4.Sub(t3), "after", time.Since(t4))
	}()
	if ctx.Err() != nil {
		return 0 // shutting down: an nginx -t killed by the cancel is no failure
	}
	if o.res.Reloaded {
		s.reloads.Add(1)
		s.m.reloads.Inc()
	}
	if o.applied != nil {
		if s.traffic != nil {
			s.traffic.SetSites(hostsOf(o.applied))
		}
		r := o.res
		why := s.last.why(o.applied, refs)
		if r.Changed {
			st.AppliedAt = time.Now().UTC()
			s.log.Info("nginx config applied", "why", why, "routes", len(o.applied), "reloaded", r.Reloaded, "sha256", r.Hash[:12],
				"nginx_t", r.Test.Round(time.Microsecond), "reload", r.Reload.Round(time.Microsecond))
			s.m.applied(len(o.applied))
		}
		// The config in place uses only refs: stale dirs can go.
		if perr := s.certs.Prune(refs); perr != nil {
			s.log.Warn("prune certificates", "err", perr)
		}
		s.markSettings()
		st.AppliedRoutes = render.RouteDigests(o.applied)
		st.Applied, st.Routes, st.Error, st.ErrorRoutes = r.Hash, len(o.applied), "", nil
	} else if !refused(o.err) {
		retry = retryIn
	}
	if o.err == nil && s.mainErr != nil {
		o.err = s.mainErr
	}
	var we *WriteError
	if errors.As(o.err, &we) {
		retry = retryIn // a disk that fills frees up
	}
	var starting *startingError
	if errors.As(o.err, &starting) {
		// The first push raced nginx's start; Run pushes again once
		// nginx is up. Nothing failed: the status keeps what it said.
		s.log.Debug("nginx not up yet; pushing once it is", "err", redact.Error(o.err))
		return retry
	}
	if o.err != nil {
		msg := redact.Error(o.err)
		if st.Error != msg {
			if o.applied == nil {
				s.log.Error("nginx config not applied; keeping the last good one", "err", msg, "routes", o.errRoutes)
			} else if we != nil && o.err != s.mainErr {
				s.log.Error("nginx serves the applied routes; a file for its next start was not written", "err", msg)
			}
			s.m.failures.Inc()
		}
		st.Error, st.ErrorRoutes = msg, o.errRoutes
	}
	s.m.refused.Set(float64(len(st.ErrorRoutes)))
	st.Reloads = s.Reloads()
	st.HTTP3, st.HTTP3Off = s.settings.HTTP3, s.http3Off
	if !s.publishSettings(ctx) {
		retry = retryIn
	}
	if s.status == nil || !sameStatus(*s.status, st) {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, werr := store.PutJSON(wctx, s.cli, s.cfg.Keys.NginxStatus(s.cfg.Instance), st)
		cancel()
		if werr != nil {
			s.log.Warn("write nginx status", "err", werr)
			retry = retryIn
		} else {
			s.status = &st
		}
	}
	return retry
}

func sameStatus(a, b store.NginxStatus) bool {
	if !maps.Equal(a.AppliedRoutes, b.AppliedRoutes) {
		return false
	}
	return a.Instance == b.Instance && a.Applied == b.Applied && a.Routes == b.Routes && a.Reloads == b.Reloads &&
		a.Error == b.Error && slices.Equal(a.ErrorRoutes, b.ErrorRoutes) && a.AppliedAt.Equal(b.AppliedAt) &&
		slices.Equal(a.HTTPAddrs, b.HTTPAddrs) && slices.Equal(a.HTTPSAddrs, b.HTTPSAddrs) &&
		a.HTTP3 == b.HTTP3 && a.HTTP3Off == b.HTTP3Off
}

// logErrors logs each configuration problem once, while it persists:
// routing problems, dropped routes and rejected certificate bundles.
func (s *Stage) logErrors(errs []error) {
	now := map[string]bool{}
	for _, e := range errs {
		msg := e.Error()
		now[msg] = true
		if s.logged[msg] {
			continue
		}
		lvl := slog.LevelWarn
		if p, ok := e.(routing.Problem); ok && p.Severity == routing.SeverityError {
			lvl = slog.LevelError
		}
		s.log.Log(context.Background(), lvl, "configuration problem", "err", msg)
	}
	s.logged = now
}
