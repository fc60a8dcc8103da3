package certs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/portico/portico/internal/atomicfile"
	"github.com/portico/portico/internal/certs/localca"
	"github.com/portico/portico/internal/hosts"
	"github.com/portico/portico/internal/redact"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// Issuer obtains a certificate for names, names[0] the subject.
type Issuer interface {
	Obtain(ctx context.Context, names []string) (store.CertBundle, error)
}

// RenewalInfoer is an Issuer that can tell when the CA wants a certificate
// renewed (ACME Renewal Information, RFC 9773).
type RenewalInfoer interface {
	RenewalWindow(ctx context.Context, b store.CertBundle) (start, end time.Time, err error)
}

// Defaults for Config.
const (
	DefaultCheckInterval = time.Hour
	DefaultPollInterval  = time.Second
	DefaultDebounce      = 20 * time.Millisecond // a new .test name waits for it before its certificate
	DefaultRetryBase     = time.Minute
	DefaultRetryMax      = 24 * time.Hour
	DefaultGrace         = 30 * 24 * time.Hour
	DefaultWorkers       = 4
	DefaultObtainTimeout = 10 * time.Minute
	DefaultLockTTL       = 30 * time.Second
	// releaseTimeout bounds releasing a lock or the session at the end of
	// an order or of Run: with the store down, a stop must not wait for it
	// (the lease expires after LockTTL anyway).
	releaseTimeout = 2 * time.Second
)

// Config configures the certs stage. Zero values mean the defaults above.
type Config struct {
	// Keys is the etcd key mapping.
	Keys store.Keys
	// Routing are the options the container records are read with.
	Routing routing.Options
	// HostExpiry is the nginx stages' --host-expiry (internal/hosts): the
	// records of a host gone for longer are not routed, so their names
	// need no certificate. 0 means hosts.DefaultExpiry, negative never.
	// It is judged at each pass (at least every CheckInterval).
	HostExpiry time.Duration
	// Issuer is IssuerAuto (""), IssuerLocal or IssuerACME.
	Issuer string
	// WildcardDomains fold their direct subdomains into one *.domain
	// certificate (--wildcard-domains).
	WildcardDomains []string
	// DomainsFile, when set, is the input instead of the container records:
	// a dehydrated domains.txt, polled for changes every PollInterval.
	DomainsFile string
	// DomainsOut, when set, is where the wanted list is also written in
	// dehydrated's domains.txt format (atomically, only when it changes).
	DomainsOut string
	// ACME obtains certificates from an ACME CA; nil means certificates that
	// need ACME fail with ErrNoACME. If it is a RenewalInfoer, its renewal
	// windows are used.
	ACME Issuer
	// Local obtains certificates from the local CA; nil means the built-in
	// localca, configured by LocalCA.
	Local   Issuer
	LocalCA localca.Options
	// CheckInterval is how often every certificate is looked at even when
	// nothing changed (and renewal windows are fetched again).
	CheckInterval time.Duration
	// PollInterval is how often DomainsFile is read for changes.
	PollInterval time.Duration
	// Debounce is how long the stage waits after a change for more changes.
	Debounce time.Duration
	// RetryBase is the wait after a first failure; it doubles with each
	// further consecutive failure up to RetryMax.
	RetryBase, RetryMax time.Duration
	// Grace is how long a certificate no one wants any more is still renewed.
	Grace time.Duration
	// Workers bounds concurrent orders; ObtainTimeout bounds each one.
	Workers       int
	ObtainTimeout time.Duration
	// LockTTL is the lease TTL of the per-certificate etcd locks: how long a
	// crashed stage's lock outlives it.
	LockTTL time.Duration
	// Metrics registers the stage's metrics; nil means none.
	Metrics prometheus.Registerer
	// Now is the clock the decisions use; nil means time.Now.
	Now func() time.Time
}

// Stage is the certs stage.
type Stage struct {
	cfg   Config
	cli   *clientv3.Client
	log   *slog.Logger
	plan  PlanOptions
	local Issuer
	m     *metrics
	kick  chan struct{}
	sem   chan struct{}
	// passes counts completed reconcile passes (for tests).
	passes atomic.Int64
	// hostsMirror mirrors the hosts' liveness keys (nil with DomainsFile).
	hostsMirror *store.Mirror

	mu        sync.Mutex
	inflight  map[string]bool
	session   *concurrency.Session
	ari       map[string]ariEntry
	badKeys   map[string]int64
	fileSets  [][]string
	fileReady bool
	warned    map[string]bool // plan warnings already logged
}

type ariEntry struct {
	serial  string
	window  *Window
	fetched time.Time
}

// New checks cfg and returns the stage; it does no I/O.
func New(cfg Config, cli *clientv3.Client, log *slog.Logger) (*Stage, error) {
	switch cfg.Issuer {
	case IssuerAuto, IssuerLocal, IssuerACME:
	default:
		return nil, fmt.Errorf("certs: issuer %q: want %q, %q or empty", cfg.Issuer, IssuerLocal, IssuerACME)
	}
	plan := PlanOptions{Issuer: cfg.Issuer}
	for _, d := range cfg.WildcardDomains {
		n, err := NormalizeName(d)
		if err != nil || n[0] == '*' {
			return nil, fmt.Errorf("certs: wildcard domain %q: %w", d, cmpErr(err, errors.New("give the domain without *.")))
		}
		plan.WildcardDomains = append(plan.WildcardDomains, n)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.CheckInterval, DefaultCheckInterval)
	def(&cfg.PollInterval, DefaultPollInterval)
	def(&cfg.Debounce, DefaultDebounce)
	def(&cfg.RetryBase, DefaultRetryBase)
	def(&cfg.RetryMax, DefaultRetryMax)
	def(&cfg.Grace, DefaultGrace)
	def(&cfg.ObtainTimeout, DefaultObtainTimeout)
	def(&cfg.LockTTL, DefaultLockTTL)
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	local := cfg.Local
	if local == nil {
		if cfg.LocalCA.Log == nil {
			cfg.LocalCA.Log = log
		}
		local = localca.New(cli, cfg.Keys, cfg.LocalCA)
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	return &Stage{
		cfg: cfg, cli: cli, log: redact.Logger(log), plan: plan, local: local, m: m,
		kick:     make(chan struct{}, 1),
		sem:      make(chan struct{}, cfg.Workers),
		inflight: map[string]bool{},
		ari:      map[string]ariEntry{},
		badKeys:  map[string]int64{},
	}, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// Run reconciles until ctx ends, then waits for its orders to stop and
// returns ctx's error. It is level-triggered: every pass derives everything
// from the mirrored records, bundles and states.
func (s *Stage) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		s.mu.Lock()
		if s.session != nil {
			// Session.Close would wait up to the lease TTL (30 s) for a
			// store that does not answer: revoke for a bounded time; a
			// lease not revoked expires by itself.
			s.session.Orphan()
			rctx, rcancel := context.WithTimeout(context.Background(), releaseTimeout)
			s.cli.Revoke(rctx, s.session.Lease())
			rcancel()
		}
		s.mu.Unlock()
	}()
	goRun := func(f func(context.Context) error) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	var containers *store.Mirror
	if s.cfg.DomainsFile == "" {
		containers = store.NewMirror(s.cli, s.cfg.Keys.Containers(), s.kick, s.log)
		goRun(containers.Run)
		s.hostsMirror = store.NewMirror(s.cli, s.cfg.Keys.Hosts(), s.kick, s.log)
		goRun(s.hostsMirror.Run)
	} else {
		goRun(s.pollFile)
	}
	data := store.NewMirror(s.cli, s.cfg.Keys.CertData(), s.kick, s.log)
	states := store.NewMirror(s.cli, s.cfg.Keys.CertStates(), s.kick, s.log)
	// The locks: a certificate another stage is ordering is left to it,
	// and its lock's release starts a pass here.
	locks := store.NewMirror(s.cli, s.cfg.Keys.CertLocks(), s.kick, s.log)
	goRun(data.Run)
	goRun(states.Run)
	goRun(locks.Run)
	goRun(s.prepareLocal)

	wake := time.NewTimer(s.cfg.CheckInterval)
	defer wake.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake.C:
		case <-s.kick:
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(s.cfg.Debounce):
			}
		}
		next := s.reconcile(ctx, &wg, containers, data, states, locks)
		s.passes.Add(1)
		wake.Reset(max(next.Sub(s.cfg.Now()), 10*time.Millisecond))
	}
}

func (s *Stage) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// pollFile reads DomainsFile every PollInterval and pokes the loop when its
// content changed. The file is small (bounded), so it is hashed every time:
// no edit is missed, whatever the file system's mtime resolution.
func (s *Stage) pollFile(ctx context.Context) error {
	var last [sha256.Size]byte
	var lastErr string
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
		}
		data, err := readBounded(s.cfg.DomainsFile)
		if errors.Is(err, fs.ErrNotExist) {
			err, data = nil, nil
			if lastErr != "missing" {
				s.log.Warn("domains file does not exist; no certificates wanted", "file", s.cfg.DomainsFile)
				lastErr = "missing"
			}
		} else if err == nil {
			lastErr = ""
		}
		if err != nil {
			if err.Error() != lastErr {
				s.log.Error("domains file unreadable; keeping the last list", "file", s.cfg.DomainsFile, "err", err)
				lastErr = err.Error()
			}
			continue
		}
		sum := sha256.Sum256(data)
		s.mu.Lock()
		ready := s.fileReady
		s.mu.Unlock()
		if ready && sum == last {
			continue
		}
		last = sum
		sets, warnings := ParseDomains(s.cfg.DomainsFile, data)
		for _, w := range warnings {
			s.log.Warn("domains file", "problem", w)
		}
		s.mu.Lock()
		s.fileSets, s.fileReady = sets, true
		s.mu.Unlock()
		s.poke()
	}
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(f, MaxDomainsFileBytes+1)); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b.Bytes(), nil
}

// wanted derives the wanted certificates; ok is false until the input has
// been read once.
func (s *Stage) wanted(containers *store.Mirror) ([]store.WantedCert, bool) {
	if containers == nil {
		s.mu.Lock()
		sets, ready := s.fileSets, s.fileReady
		s.mu.Unlock()
		if !ready {
			return nil, false
		}
		return s.planned(UnrestrictedSets(sets, "domains file")), true
	}
	entries, _, synced := containers.Snapshot()
	if !synced {
		return nil, false
	}
	cs := make([]store.Container, 0, len(entries))
	for _, k := range slices.Sorted(maps.Keys(entries)) {
		c, err := store.DecodeContainerEntry(k, entries[k])
		if err != nil {
			s.logBad(k, entries[k].ModRevision, err)
			continue
		}
		cs = append(cs, c)
	}
	if s.hostsMirror != nil {
		expiry := s.cfg.HostExpiry
		if expiry == 0 {
			expiry = hosts.DefaultExpiry
		}
		snap, _, _ := s.hostsMirror.Snapshot()
		cs = hosts.Judge(snap, s.cfg.Keys, time.Now(), expiry).Serve(cs)
	}
	return s.planned(ServiceNames(routing.Build(cs, s.cfg.Routing))), true
}

// planned runs Plan and logs each warning once while it persists.
func (s *Stage) planned(sets []NameSet) []store.WantedCert {
	certs, warnings := Plan(sets, s.plan)
	now := make(map[string]bool, len(warnings))
	s.mu.Lock()
	for _, w := range warnings {
		now[w] = true
		if !s.warned[w] {
			s.log.Warn("certificate plan", "problem", w)
		}
	}
	s.warned = now
	s.mu.Unlock()
	if certs == nil {
		certs = []store.WantedCert{}
	}
	return certs
}

// logBad logs an undecodable key once per revision.
func (s *Stage) logBad(key string, rev int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.badKeys[key] == rev {
		return
	}
	s.badKeys[key] = rev
	s.log.Error("ignoring undecodable record", "key", key, "err", err)
}

type stored[T any] struct {
	v   T
	rev int64
}

func decodeAll[T any](s *Stage, m *store.Mirror, primary func(T) string) (map[string]stored[T], bool) {
	entries, _, synced := m.Snapshot()
	out := map[string]stored[T]{}
	for k, e := range entries {
		var v T
		if err := store.Decode(k, e.Value, &v); err != nil {
			s.logBad(k, e.ModRevision, err)
			continue
		}
		if p := primary(v); p != "" && store.Last(k) == store.Last(s.cfg.Keys.CertBundle(p)) {
			out[p] = stored[T]{v, e.ModRevision}
		} else {
			s.logBad(k, e.ModRevision, fmt.Errorf("record names certificate %q, which does not match its key", p))
		}
	}
	return out, synced
}

// reconcile is one level-triggered pass. It returns when to look again.
func (s *Stage) reconcile(ctx context.Context, wg *sync.WaitGroup, containers, data, states, locks *store.Mirror) time.Time {
	now := s.cfg.Now()
	next := now.Add(s.cfg.CheckInterval)
	wanted, ok := s.wanted(containers)
	bundles, bOK := decodeAll(s, data, func(b store.CertBundle) string { return b.Primary })
	sts, sOK := decodeAll(s, states, func(st store.CertState) string { return st.Primary })
	if !ok || !bOK || !sOK {
		return next
	}
	if err := s.publish(ctx, wanted); err != nil {
		s.log.Error("publishing wanted certificates", "err", err)
	}

	want := map[string]*store.WantedCert{}
	for i := range wanted {
		want[wanted[i].Primary] = &wanted[i]
	}
	var primaries []string
	for p := range want {
		primaries = append(primaries, p)
	}
	for p := range bundles {
		primaries = append(primaries, p)
	}
	for p := range sts {
		primaries = append(primaries, p)
	}
	slices.Sort(primaries)
	primaries = slices.Compact(primaries)
	lockEntries, _, _ := locks.Snapshot()
	locked := Locked(lockEntries, s.ownLockSuffix())

	for _, p := range primaries {
		s.mu.Lock()
		busy := s.inflight[p]
		s.mu.Unlock()
		if busy {
			continue
		}
		w := want[p]
		sb, hasBundle := bundles[p]
		ss, hasState := sts[p]
		var bp *store.CertBundle
		if hasBundle {
			bp = &sb.v
			s.m.expiry.WithLabelValues(p).Set(float64(sb.v.NotAfter.Unix()))
		}
		st := s.effective(ss.v)
		st.Primary = p
		switch {
		case w != nil:
			st.UnusedSince = time.Time{}
		case st.UnusedSince.IsZero():
			st.UnusedSince = now
		}
		window := s.window(ctx, bp)
		if bp != nil {
			st.NextRenewal = RenewAt(*bp, window)
		}
		d := Decide(Input{Want: w, Bundle: bp, State: st, Window: window, Grace: s.cfg.Grace, Superseded: s.superseded(ctx, bp)}, now)
		unsolvable := false
		if d.Action == Obtain {
			if err := s.preflight(d.Cert); err != nil {
				unsolvable = true
				// No challenge can validate a name: nothing is asked of the
				// CA (no rate-limit budget spent) and nothing is retried
				// until the names or the configuration change; the state
				// says why.
				c := d.Cert
				d = Decision{Action: Wait, Reason: "unsolvable"}
				if msg := redact.Error(err); st.LastError != msg || !SameNames(st.Names, c.Names) || st.Issuer != c.Issuer {
					st.Names, st.Issuer = c.Names, c.Issuer
					st.LastError, st.LastErrorAt, st.RetryAt = msg, now, time.Time{}
					s.log.Error("certificate cannot be ordered", "cert", p, "names", c.Names, "err", err)
				}
			}
		}
		switch d.Action {
		case Obtain:
			if locked[s.cfg.Keys.CertLock(p)] {
				// Another stage holds the lock (or waits for it): no
				// worker waits on it. Its release, or the bundle it
				// stores, starts another pass.
				s.log.Debug("certificate locked by an order; not ordering", "cert", p, "reason", d.Reason)
				continue
			}
			// The order writes the state, under the lock.
			s.start(ctx, wg, d.Cert, d.Reason)
			continue
		case Delete:
			s.delete(ctx, p, sb.rev, ss.rev)
			continue
		case Wait:
			if !d.At.IsZero() && d.At.Before(next) {
				next = d.At
			}
		}
		if (hasState || w == nil || bp != nil || unsolvable) && !stateEqual(st, ss.v) {
			if err := s.casState(ctx, st, ss.rev); err != nil {
				s.log.Error("updating certificate state", "cert", p, "err", err)
			}
		}
	}
	return next
}

func stateEqual(a, b store.CertState) bool {
	x, _ := store.Encode(a)
	y, _ := store.Encode(b)
	return bytes.Equal(x, y)
}

// publish writes the wanted list to etcd and to DomainsOut, each only when
// it changed.
func (s *Stage) publish(ctx context.Context, wanted []store.WantedCert) error {
	if _, err := store.PutJSON(ctx, s.cli, s.cfg.Keys.CertsWanted(), wanted); err != nil {
		return err
	}
	if s.cfg.DomainsOut == "" {
		return nil
	}
	return writeIfChanged(s.cfg.DomainsOut, FormatDomains(wanted))
}

// writeIfChanged replaces path atomically (atomicfile.Write) unless
// it already holds data.
func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return atomicfile.Write(path, data, 0o644)
}

// window returns the CA's renewal window for b, fetched at most once per
// CheckInterval per certificate, or nil.
func (s *Stage) window(ctx context.Context, b *store.CertBundle) *Window {
	if b == nil || b.Issuer != store.IssuerACME {
		return nil
	}
	ri, ok := s.cfg.ACME.(RenewalInfoer)
	if !ok {
		return nil
	}
	now := s.cfg.Now()
	s.mu.Lock()
	e, ok := s.ari[b.Primary]
	s.mu.Unlock()
	if ok && e.serial == b.Serial && now.Sub(e.fetched) < s.cfg.CheckInterval {
		return e.window
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start, end, err := ri.RenewalWindow(ctx, *b)
	e = ariEntry{serial: b.Serial, fetched: now}
	if err != nil {
		s.log.Warn("renewal window unavailable; renewing at a third of the lifetime", "cert", b.Primary, "err", err)
	} else {
		e.window = &Window{Start: start, End: end}
	}
	s.mu.Lock()
	s.ari[b.Primary] = e
	s.mu.Unlock()
	return e.window
}

// casState writes st unless the key changed since revision rev (0: absent),
// so it never overwrites what an order just wrote.
func (s *Stage) casState(ctx context.Context, st store.CertState, rev int64) error {
	key := s.cfg.Keys.CertState(st.Primary)
	val, err := store.Encode(st)
	if err != nil {
		return err
	}
	_, err = s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, string(val))).
		Commit()
	if err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	return nil
}

// delete removes an unused certificate's bundle and state unless either
// changed meanwhile.
func (s *Stage) delete(ctx context.Context, primary string, bundleRev, stateRev int64) {
	bk, sk := s.cfg.Keys.CertBundle(primary), s.cfg.Keys.CertState(primary)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(bk), "=", bundleRev),
			clientv3.Compare(clientv3.ModRevision(sk), "=", stateRev)).
		Then(clientv3.OpDelete(bk), clientv3.OpDelete(sk)).
		Commit()
	switch {
	case err != nil:
		s.log.Error("deleting unused certificate", "cert", primary, "err", err)
	case resp.Succeeded:
		s.m.expiry.DeleteLabelValues(primary)
		s.log.Info("deleted unused certificate", "cert", primary)
	}
}

// start orders c in the background unless an order for it is running.
func (s *Stage) start(ctx context.Context, wg *sync.WaitGroup, c store.WantedCert, reason string) {
	s.mu.Lock()
	if s.inflight[c.Primary] {
		s.mu.Unlock()
		return
	}
	s.inflight[c.Primary] = true
	s.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.inflight, c.Primary)
			s.mu.Unlock()
			s.poke()
		}()
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-s.sem }()
		if err := s.order(ctx, c, reason); err != nil && ctx.Err() == nil {
			s.log.Error("certificate order aborted", "cert", c.Primary, "err", err)
		}
	}()
}

// sessionFor returns the etcd session the locks hang on, opening a new one
// if the last expired.
func (s *Stage) sessionFor(ctx context.Context) (*concurrency.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session != nil {
		select {
		case <-s.session.Done():
			s.session = nil
		default:
			return s.session, nil
		}
	}
	ttl := max(int(s.cfg.LockTTL/time.Second), 1)
	// The session outlives single orders; Run closes it (revoking the lease)
	// when it returns.
	sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(ttl), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, fmt.Errorf("etcd session: %w", err)
	}
	s.session = sess
	return sess, nil
}

// order obtains c under its etcd lock. Inside the lock it reads the store
// again and decides again, so a certificate another stage stored meanwhile
// is not ordered twice. The outcome is stored only while the lock is held.
// A lock another stage holds is not waited for: that stage orders, and
// the lock's release starts a pass (the locks mirror), so no worker slot
// idles behind another stage's order. An issuer failure is recorded in
// the state (and logged here); the returned error is about the store or
// the lock.
func (s *Stage) order(runCtx context.Context, c store.WantedCert, reason string) error {
	sess, err := s.sessionFor(runCtx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(runCtx, s.cfg.ObtainTimeout)
	defer cancel()
	mu := concurrency.NewMutex(sess, s.cfg.Keys.CertLock(c.Primary))
	if err := mu.TryLock(ctx); errors.Is(err, concurrency.ErrLocked) {
		s.log.Debug("certificate locked by another stage's order; leaving it to that stage", "cert", c.Primary)
		return nil
	} else if err != nil {
		return fmt.Errorf("lock %q: %w", s.cfg.Keys.CertLock(c.Primary), err)
	}
	defer func() {
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer ucancel()
		mu.Unlock(uctx)
	}()

	bk, sk := s.cfg.Keys.CertBundle(c.Primary), s.cfg.Keys.CertState(c.Primary)
	resp, err := s.cli.Txn(ctx).Then(clientv3.OpGet(bk), clientv3.OpGet(sk)).Commit()
	if err != nil {
		return fmt.Errorf("read %q: %w", bk, err)
	}
	var bp *store.CertBundle
	var st store.CertState
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		var b store.CertBundle
		if err := store.Decode(bk, kvs[0].Value, &b); err == nil {
			bp = &b
		}
	}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		if err := store.Decode(sk, kvs[0].Value, &st); err != nil {
			st = store.CertState{}
		}
	}
	st = s.effective(st)
	st.Primary = c.Primary
	now := s.cfg.Now()
	if d := Decide(Input{Want: &c, Bundle: bp, State: st, Window: s.window(ctx, bp), Grace: s.cfg.Grace, Superseded: s.superseded(ctx, bp)}, now); d.Action != Obtain {
		s.log.Debug("certificate order not needed any more", "cert", c.Primary, "reason", d.Reason)
		return nil
	}

	s.log.Info("ordering certificate", "cert", c.Primary, "names", c.Names, "issuer", c.Issuer, "reason", reason)
	b, err := s.obtain(ctx, c)
	now = s.cfg.Now()
	ops := []clientv3.Op{}
	if err != nil {
		st = RecordFailure(st, c, err, now, s.cfg.RetryBase, s.cfg.RetryMax)
		s.m.failures.WithLabelValues(c.Issuer).Inc()
		s.log.Error("certificate order failed", "cert", c.Primary, "names", c.Names, "issuer", c.Issuer,
			"err", err, "failures", st.Failures, "retry_at", st.RetryAt)
	} else {
		st = RecordSuccess(st, c, b, now)
		val, err := store.Encode(b)
		if err != nil {
			return err
		}
		ops = append(ops, clientv3.OpPut(bk, string(val)))
		s.m.obtained.WithLabelValues(c.Issuer).Inc()
		s.m.expiry.WithLabelValues(c.Primary).Set(float64(b.NotAfter.Unix()))
		s.log.Info("certificate stored", "cert", c.Primary, "issuer", c.Issuer, "not_after", b.NotAfter, "next_renewal", st.NextRenewal)
	}
	val, err := store.Encode(st)
	if err != nil {
		return err
	}
	ops = append(ops, clientv3.OpPut(sk, string(val)))
	tr, err := s.cli.Txn(ctx).If(mu.IsOwner()).Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("store %q: %w", bk, err)
	}
	if !tr.Succeeded {
		return fmt.Errorf("store %q: lost the lock %q", bk, s.cfg.Keys.CertLock(c.Primary))
	}
	return nil
}

// Preflighter is an ACME issuer that can tell, without any request, that
// no challenge can validate a certificate's names (acme.Issuer.Preflight).
type Preflighter interface {
	Preflight(names []string) error
}

// preflight is the ACME issuer's Preflight of c, nil for other issuers.
func (s *Stage) preflight(c store.WantedCert) error {
	if c.Issuer != store.IssuerACME {
		return nil
	}
	if p, ok := s.cfg.ACME.(Preflighter); ok {
		return p.Preflight(c.Names)
	}
	return nil
}

// effective drops a backoff that only waited for an ACME issuer to be
// configured, once one is.
func (s *Stage) effective(st store.CertState) store.CertState {
	if s.cfg.ACME != nil && st.LastError == ErrNoACME.Error() {
		st.RetryAt = time.Time{}
	}
	return st
}

// obtain asks the certificate's issuer and checks what comes back.
func (s *Stage) obtain(ctx context.Context, c store.WantedCert) (store.CertBundle, error) {
	iss := s.local
	if c.Issuer == store.IssuerACME {
		iss = s.cfg.ACME
	}
	if iss == nil {
		return store.CertBundle{}, ErrNoACME
	}
	b, err := iss.Obtain(ctx, c.Names)
	if err != nil {
		return store.CertBundle{}, err
	}
	if b.CertPEM == "" || b.KeyPEM == "" || b.NotAfter.IsZero() {
		return store.CertBundle{}, fmt.Errorf("issuer %s returned an incomplete bundle for %q", c.Issuer, c.Primary)
	}
	// The bundle is filed under the wanted certificate, so that the next
	// pass finds it current.
	b.Primary, b.Names, b.Issuer = c.Primary, c.Names, c.Issuer
	if b.ObtainedAt.IsZero() {
		b.ObtainedAt = s.cfg.Now().UTC()
	}
	return b, nil
}

// Locked is the set of certificate lock prefixes (Keys.CertLock) that
// another session holds or waits for, from the entries under
// Keys.CertLocks: each contender's key is the prefix, "/" and its lease in
// hex. Keys ending in own (this stage's session lease; "" for none) are
// not counted: a key of this stage's whose release failed is taken again
// by its next order (TryLock of the same session), not waited for. It is
// pure.
func Locked(entries map[string]store.Entry, own string) map[string]bool {
	out := make(map[string]bool, len(entries))
	for k := range entries {
		i := strings.LastIndexByte(k, '/')
		if i <= 0 || (own != "" && k[i+1:] == own) {
			continue
		}
		out[k[:i]] = true
	}
	return out
}

// ownLockSuffix is the lease of the stage's lock session in hex, as it
// ends the stage's lock keys, or "" while it has none.
func (s *Stage) ownLockSuffix() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session == nil {
		return ""
	}
	return fmt.Sprintf("%x", s.session.Lease())
}
