// Package reporter is the only part of Portico that talks to Docker. It keeps
// one record per container of its host under Keys.HostContainers(Host) in
// etcd, level-triggered: it subscribes to Docker's events, lists and inspects
// every container, reconciles the host's stored records with that list, and
// then re-inspects only the containers events name. When Docker or etcd fail
// it retries and lists everything again. See docs/reporter.md.
package reporter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/hosts"
	"github.com/portico/portico/internal/store"
)

// Config configures a Reporter.
type Config struct {
	// DockerHost is the Docker daemon's address, e.g. unix:///var/run/docker.sock
	// or tcp://10.0.0.1:2375. "" means the Docker client's environment
	// defaults (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, DOCKER_API_VERSION).
	DockerHost string
	// Host names this reporter's host; its records live under
	// Keys.HostContainers(Host). Every host sharing an etcd needs its own.
	Host string
	// AdvertiseAddr is the address other hosts reach this host at
	// (--advertise-addr); every record carries it (store.Container.HostAddr)
	// so that a proxy on another host reaches the container at it and a
	// published port. The zero value: none, the records carry no address
	// and proxies reach containers at their container addresses.
	AdvertiseAddr netip.Addr
	// Keys is the etcd key mapping.
	Keys store.Keys
	// Labels, when set, limits the reporter to containers carrying every one
	// of these labels ("key" or "key=value", as in `docker ps --filter label=`).
	// Containers that do not match are treated as absent.
	Labels []string
	// ResyncInterval is how often the reporter lists every container again
	// even when nothing failed (reads only; writes happen only on change).
	// 0 means 10 minutes; negative disables it.
	ResyncInterval time.Duration
	// CallTimeout bounds each Docker or etcd call (not the event stream).
	// 0 means 30 seconds.
	CallTimeout time.Duration
	// Metrics registers the reporter's metrics; nil disables them.
	Metrics prometheus.Registerer
	// Liveness, when set, is the etcd client the reporter keeps its host's
	// heartbeat and last-seen keys with (internal/hosts), beside the
	// records. nil: no heartbeat (the host is never judged stale).
	Liveness hosts.Client
	// HeartbeatTTL is the heartbeat lease's TTL; 0 means hosts.DefaultTTL.
	HeartbeatTTL time.Duration
}

// KV is the part of the etcd client the reporter uses.
type KV interface {
	Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error)
	Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error)
	Txn(ctx context.Context) clientv3.Txn
}

// Reporter mirrors one host's containers into etcd.
type Reporter struct {
	cfg    Config
	kv     KV
	docker *client.Client
	log    *slog.Logger
	m      metrics

	synced chan struct{} // closed by the first resync; only Run's goroutine closes it

	// cache is what this host's keys hold in etcd, as far as the reporter
	// knows: each key's ModRevision and value hash from the last full read
	// plus its own writes since. Only Run's goroutine uses it.
	cache map[string]store.Version
	// marks remembers the containers being stopped (kill events), which
	// inspect does not tell; it survives resyncs and reconnects. Only Run's
	// goroutine uses it.
	marks stopMarks
	// beat keeps the host's liveness keys; nil without Config.Liveness.
	// It runs (beatStop set) while a session follows Docker. Only Run's
	// goroutine uses beatStop.
	beat     *hosts.Heartbeat
	beatStop func()
}

type metrics struct {
	events, writes, resyncs prometheus.Counter
	dockerUp                prometheus.Gauge
}

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// errDocker marks failures of the Docker daemon, which end a session and
// reconnect; other errors (etcd) are retried within the session.
var errDocker = errors.New("docker")

// New checks cfg and prepares a reporter. It does not contact Docker or etcd;
// Run does, and retries until they answer.
func New(cfg Config, kv KV, log *slog.Logger) (*Reporter, error) {
	if cfg.Host == "" || strings.Contains(cfg.Host, "/") {
		return nil, fmt.Errorf("reporter: host name %q: must be non-empty and contain no \"/\"", cfg.Host)
	}
	if err := CheckAdvertiseAddr(cfg.AdvertiseAddr); err != nil {
		return nil, fmt.Errorf("reporter: %w", err)
	}
	for _, l := range cfg.Labels {
		if k, _, _ := strings.Cut(l, "="); k == "" {
			return nil, fmt.Errorf("reporter: label filter %q: no label name", l)
		}
	}
	if cfg.ResyncInterval == 0 {
		cfg.ResyncInterval = 10 * time.Minute
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	opt := client.FromEnv
	if cfg.DockerHost != "" {
		opt = client.WithHost(cfg.DockerHost)
	}
	// API version negotiation is on by default in this client: it settles
	// on the daemon's version (Docker 20.10 speaks 1.41) at the first call.
	docker, err := client.New(opt)
	if err != nil {
		return nil, fmt.Errorf("reporter: docker host %q: %w", cfg.DockerHost, err)
	}
	m := metrics{
		events:   prometheus.NewCounter(prometheus.CounterOpts{Name: "portico_reporter_events_total", Help: "Docker events the reporter acted on."}),
		writes:   prometheus.NewCounter(prometheus.CounterOpts{Name: "portico_reporter_writes_total", Help: "Container records written or deleted in etcd."}),
		resyncs:  prometheus.NewCounter(prometheus.CounterOpts{Name: "portico_reporter_resyncs_total", Help: "Completed full lists of the host's containers."}),
		dockerUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "portico_reporter_docker_up", Help: "1 while the reporter follows Docker's event stream."}),
	}
	if cfg.Metrics != nil {
		for _, c := range []prometheus.Collector{m.events, m.writes, m.resyncs, m.dockerUp} {
			if err := cfg.Metrics.Register(c); err != nil {
				docker.Close()
				return nil, fmt.Errorf("reporter: register metrics: %w", err)
			}
		}
	}
	r := &Reporter{cfg: cfg, kv: kv, docker: docker, log: log, m: m, synced: make(chan struct{}), cache: map[string]store.Version{}, marks: stopMarks{}}
	if cfg.Liveness != nil {
		adv := ""
		if cfg.AdvertiseAddr.IsValid() {
			adv = cfg.AdvertiseAddr.String()
		}
		r.beat, err = hosts.NewHeartbeat(hosts.HeartbeatConfig{Host: cfg.Host, AdvertiseAddr: adv, Keys: cfg.Keys, TTL: cfg.HeartbeatTTL, Metrics: cfg.Metrics}, cfg.Liveness, log)
		if err != nil {
			docker.Close()
			return nil, fmt.Errorf("reporter: %w", err)
		}
	}
	return r, nil
}

// Synced is closed once the first full list of containers has been
// reconciled with etcd.
func (r *Reporter) Synced() <-chan struct{} { return r.synced }

// Run reports until ctx ends, then closes the Docker client and returns
// ctx's error. Every other failure is logged and retried: Docker with
// exponential backoff (100ms..5s) and a full resync, etcd by a full resync.
// Call Run once.
func (r *Reporter) Run(ctx context.Context) error {
	defer r.docker.Close()
	defer r.stopBeat()
	backoff := minBackoff
	down := false // logged as unavailable; further failures log at debug
	for {
		synced, err := r.session(ctx)
		r.m.dockerUp.Set(0)
		// The heartbeat says the host's records are followed: not while
		// Docker is away. A lease outlives a brief outage (its TTL), so
		// a daemon restart does not make the host stale.
		r.stopBeat()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if synced {
			backoff, down = minBackoff, false
		}
		lvl := slog.LevelWarn
		if down {
			lvl = slog.LevelDebug
		}
		r.log.Log(ctx, lvl, "docker unavailable; reconnecting", "host", r.cfg.Host, "docker", r.docker.DaemonHost(), "err", err, "retry_in", backoff)
		down = true
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		if !synced {
			backoff = min(backoff*2, maxBackoff)
		}
	}
}

// session follows Docker from one connection until the event stream or a
// Docker call fails. It reports whether it completed a resync.
func (r *Reporter) session(ctx context.Context) (synced bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribe before listing, so no change between the list and the
	// stream is lost. Events returns once the daemon answered the request;
	// the daemon flushes that answer just before it subscribes, so Since
	// (a second back, against clock skew) has it replay anything in between.
	// Replayed events only cause a redundant inspect.
	since := time.Now().Add(-time.Second)
	ev := r.docker.Events(sctx, client.EventsListOptions{
		Since:   fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()),
		Filters: make(client.Filters).Add("type", string(events.ContainerEventType), string(events.NetworkEventType)),
	})

	dirty := map[string]bool{}
	needResync := true
	var retry <-chan time.Time
	etcdBackoff := minBackoff
	var periodic <-chan time.Time
	// lapse fires at the earliest deadline of a stop mark, so that a
	// container that outlived its stop timeout is inspected and put back
	// in rotation then, not at the next event or resync.
	lapse := time.NewTimer(time.Hour)
	lapse.Stop()
	defer lapse.Stop()
	if r.cfg.ResyncInterval > 0 {
		t := time.NewTicker(r.cfg.ResyncInterval)
		defer t.Stop()
		periodic = t.C
	}
	etcdFailed := func(err error) {
		needResync = true
		retry = time.After(etcdBackoff)
		r.log.Error("store update failed; resyncing", "host", r.cfg.Host, "err", err, "retry_in", etcdBackoff)
		etcdBackoff = min(etcdBackoff*2, maxBackoff)
	}
	for {
		if needResync && retry == nil {
			// Events received so far are covered by the list below.
			clear(dirty)
			switch err := r.resync(sctx, synced); {
			case errors.Is(err, errDocker):
				return synced, err
			case err != nil:
				r.m.dockerUp.Set(1)
				etcdFailed(err)
			default:
				r.m.dockerUp.Set(1)
				needResync, synced, etcdBackoff = false, true, minBackoff
				r.startBeat(ctx)
			}
		}
		if !needResync {
			for id := range dirty {
				err := r.update(sctx, id)
				if errors.Is(err, errDocker) {
					return synced, err
				}
				if err != nil {
					etcdFailed(err)
					break
				}
				delete(dirty, id)
			}
		}
		var lapsed <-chan time.Time
		// Armed only while updates run: a resync judges every mark anyway.
		if at, ok := r.marks.next(); ok && !needResync {
			lapse.Reset(time.Until(at))
			lapsed = lapse.C
		}
		select {
		case <-ctx.Done():
			return synced, ctx.Err()
		case <-lapsed:
			for _, id := range r.marks.due(time.Now()) {
				dirty[id] = true
			}
		case err := <-ev.Err:
			return synced, fmt.Errorf("%w: event stream: %w", errDocker, err)
		case m := <-ev.Messages:
			r.note(m, dirty)
			// Coalesce a burst (kill, die, stop) into one inspect per container.
		drain:
			for {
				select {
				case m := <-ev.Messages:
					r.note(m, dirty)
				default:
					break drain
				}
			}
		case <-retry:
			retry = nil
		case <-periodic:
			needResync = true
		}
	}
}

// note marks the container an event concerns as dirty, and follows its
// stop (kill, pause, unpause, start, restart).
func (r *Reporter) note(m events.Message, dirty map[string]bool) {
	r.marks.event(m)
	if id := EventContainer(m); id != "" {
		r.m.events.Inc()
		dirty[id] = true
	}
}

// EventContainer returns the id of the container whose record an event may
// change, or "" for events the reporter ignores.
func EventContainer(m events.Message) string {
	switch m.Type {
	case events.ContainerEventType:
		switch m.Action {
		case events.ActionCreate, events.ActionStart, events.ActionRestart, events.ActionKill,
			events.ActionStop, events.ActionDie, events.ActionPause, events.ActionUnPause, events.ActionRename,
			events.ActionDestroy, events.ActionUpdate:
			return m.Actor.ID
		}
		// "health_status: healthy" and friends.
		if strings.HasPrefix(string(m.Action), string(events.ActionHealthStatus)) {
			return m.Actor.ID
		}
	case events.NetworkEventType:
		if m.Action == events.ActionConnect || m.Action == events.ActionDisconnect {
			return m.Actor.Attributes["container"]
		}
	}
	return ""
}

// resync lists every container and reads this host's records; deletes the
// records of containers that are not listed; inspects the containers
// inspectWorkers at a time and writes each changed record as soon as its
// inspect returns; then deletes the records of containers that vanished
// before their inspect. Every Docker and etcd call has its own CallTimeout,
// so a host with many containers on a slow daemon still syncs.
//
// A failed inspect or put holds back nothing else: the other records are
// written and every delete is done (a failed inspect keeps that container's
// old record, since it is still listed), then the resync returns the first
// error (errDocker for an inspect) and is retried. Only when etcd fails
// maxPutFailures times in a row does it stop writing early. A repeated
// resync (periodic) that changes nothing logs at debug level.
func (r *Reporter) resync(ctx context.Context, repeated bool) error {
	f := make(client.Filters)
	if len(r.cfg.Labels) > 0 {
		f.Add("label", r.cfg.Labels...)
	}
	lctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	list, err := r.docker.ContainerList(lctx, client.ContainerListOptions{All: true, Filters: f})
	cancel()
	if err != nil {
		return fmt.Errorf("%w: list containers: %w", errDocker, err)
	}
	prefix := r.cfg.Keys.HostContainers(r.cfg.Host)
	gctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	resp, err := r.kv.Get(gctx, prefix, clientv3.WithPrefix())
	cancel()
	if err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	r.cache = make(map[string]store.Version, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		r.cache[string(kv.Key)] = store.VersionOf(kv.ModRevision, kv.Value)
	}

	// The records of containers Docker no longer lists go first: a removed
	// container must stop being routed (Docker may hand its address to
	// another container) whatever happens to the others.
	listed := make(map[string]bool, len(list.Items))
	for _, s := range list.Items {
		listed[s.ID] = true
	}
	r.marks.keepOnly(listed)
	var fails failures
	deletes := r.deleteAll(ctx, Stale(r.cfg.Keys, r.cfg.Host, listed, r.cache), &fails)
	if fails.etcdDown() {
		return fails.err
	}

	ictx, stop := context.WithCancel(ctx)
	defer stop()
	results := r.inspectAll(ictx, list.Items)
	containers, puts := 0, 0
	var gone []string
	for res := range results {
		switch {
		case fails.etcdDown():
			// drain: the workers stop once ictx is cancelled
		case res.err != nil:
			// One container's inspect failing does not hold back the
			// others; its old record stays.
			fails.add(res.err, false)
		case !res.ok:
			r.marks.forget(res.id)
			gone = append(gone, r.cfg.Keys.Container(r.cfg.Host, res.id))
		default:
			containers++
			r.judgeStop(&res.c, res)
			changed, err := r.putRecord(ctx, res.c)
			fails.add(err, true)
			if fails.etcdDown() {
				stop()
			} else if changed {
				puts++
			}
		}
	}
	deletes += r.deleteAll(ctx, gone, &fails)
	if fails.err != nil {
		return fails.err
	}
	r.m.resyncs.Inc()
	select {
	case <-r.synced:
	default:
		close(r.synced)
	}
	lvl := slog.LevelInfo
	if repeated && puts == 0 && deletes == 0 {
		lvl = slog.LevelDebug
	}
	r.log.Log(ctx, lvl, "containers synced", "host", r.cfg.Host, "containers", containers, "puts", puts, "deletes", deletes)
	return nil
}

// maxPutFailures consecutive etcd failures within one resync mean etcd is
// down: the resync stops writing and retries later, rather than spend
// CallTimeout on every remaining container.
const maxPutFailures = 3

// failures collects a resync's errors: the first one is returned, and
// consecutive etcd failures are counted.
type failures struct {
	err         error
	consecutive int
}

func (f *failures) add(err error, etcd bool) {
	if err == nil {
		if etcd {
			f.consecutive = 0
		}
		return
	}
	if f.err == nil {
		f.err = err
	}
	if etcd {
		f.consecutive++
	}
}

func (f *failures) etcdDown() bool { return f.consecutive >= maxPutFailures }

// deleteAll deletes keys, each on its own, past individual failures, and
// returns how many it deleted.
func (r *Reporter) deleteAll(ctx context.Context, keys []string, fails *failures) int {
	n := 0
	for _, k := range keys {
		if fails.etcdDown() {
			return n
		}
		err := r.delete(ctx, k)
		fails.add(err, true)
		if err == nil {
			n++
		}
	}
	return n
}

// inspectWorkers bounds the inspects a resync runs at once. Docker answers
// them concurrently; eight keep a daemon with thousands of containers busy
// without flooding it.
const inspectWorkers = 8

type inspected struct {
	id          string
	c           store.Container
	stopSignal  string // Docker's Config.StopSignal; "" means SIGTERM
	stopTimeout *int   // Docker's Config.StopTimeout in seconds; nil means 10
	ok          bool
	err         error
}

// inspectAll inspects the listed containers on inspectWorkers goroutines,
// each call with its own CallTimeout. The channel closes after the last
// result; once ctx ends the remaining containers are skipped.
func (r *Reporter) inspectAll(ctx context.Context, items []container.Summary) <-chan inspected {
	ids := make(chan string)
	out := make(chan inspected)
	var wg sync.WaitGroup
	for range min(inspectWorkers, len(items)) {
		wg.Go(func() {
			for id := range ids {
				cctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
				res := r.inspect(cctx, id)
				cancel()
				out <- res
			}
		})
	}
	go func() {
		defer func() { close(ids); wg.Wait(); close(out) }()
		for _, s := range items {
			select {
			case ids <- s.ID:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// inspect returns a container's record and stop signal; ok is false when
// the container is gone or does not match the label filter. A container that
// cannot be converted (logged) gets a rejected record. It does not set the
// record's Stopping: judgeStop does, on Run's goroutine.
func (r *Reporter) inspect(ctx context.Context, id string) inspected {
	res, err := r.docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return inspected{id: id}
	}
	if err != nil {
		return inspected{id: id, err: fmt.Errorf("%w: inspect container %s: %w", errDocker, id, err)}
	}
	var labels map[string]string
	var stopSignal string
	var stopTimeout *int
	if cfg := res.Container.Config; cfg != nil {
		labels, stopSignal, stopTimeout = cfg.Labels, cfg.StopSignal, cfg.StopTimeout
	}
	if !MatchLabels(labels, r.cfg.Labels) {
		return inspected{id: id}
	}
	c, err := Convert(r.cfg.Host, res.Container, r.cfg.Labels)
	if err == nil && r.cfg.AdvertiseAddr.IsValid() {
		c.HostAddr = r.cfg.AdvertiseAddr.String()
	}
	if err != nil {
		if res.Container.ID == "" {
			r.log.Error("container not reported", "host", r.cfg.Host, "id", id, "err", err)
			return inspected{id: id}
		}
		var state string
		if res.Container.State != nil {
			state = string(res.Container.State.Status)
		}
		c = Rejected(store.Container{ID: res.Container.ID, Name: strings.TrimPrefix(res.Container.Name, "/"), Host: r.cfg.Host, State: state}, err.Error())
	}
	return inspected{id: id, c: c, stopSignal: stopSignal, stopTimeout: stopTimeout, ok: true}
}

// judgeStop settles the container's pending kill events against its stop
// signal, stop timeout and state, and sets the record's Stopping from its
// mark. A rejected record never routes and does not carry the mark.
func (r *Reporter) judgeStop(c *store.Container, res inspected) {
	stopping, change := r.marks.judge(c.ID, c.State, res.stopSignal, res.stopTimeout, time.Now())
	if c.Rejected != "" {
		return
	}
	c.Stopping = stopping
	switch change {
	case stopBegan:
		r.log.Info("container stopping", "host", r.cfg.Host, "container", c.Name, "id", c.ID, "stop_signal", cmp.Or(res.stopSignal, "SIGTERM"))
	case stopLapsed:
		r.log.Warn("container still running after its stop timeout; back in rotation", "host", r.cfg.Host, "container", c.Name, "id", c.ID,
			"stop_signal", cmp.Or(res.stopSignal, "SIGTERM"), "stop_timeout", stopTimeoutText(res.stopTimeout))
	}
}

// stopTimeoutText is a stop timeout for the log.
func stopTimeoutText(t *int) string {
	if t == nil {
		return DefaultStopTimeout.String()
	}
	return (time.Duration(*t) * time.Second).String()
}

// update re-inspects one container and writes or deletes its record.
func (r *Reporter) update(ctx context.Context, id string) error {
	ictx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	res := r.inspect(ictx, id)
	cancel()
	if res.err != nil {
		return res.err
	}
	if !res.ok {
		r.marks.forget(id)
		return r.delete(ctx, r.cfg.Keys.Container(r.cfg.Host, id))
	}
	r.judgeStop(&res.c, res)
	_, err := r.putRecord(ctx, res.c)
	return err
}

// putRecord writes a container's record (the rejected record instead when
// it exceeds MaxRecordBytes) unless the cache holds it already, and reports
// whether it differed.
func (r *Reporter) putRecord(ctx context.Context, c store.Container) (bool, error) {
	pub, b, err := Record(c, MaxRecordBytes)
	if err != nil {
		return false, err
	}
	changed, err := r.put(ctx, r.cfg.Keys.Container(r.cfg.Host, c.ID), b)
	if changed && pub.Rejected != "" {
		// Logged when the record changes, not at every inspect.
		r.log.Warn("container rejected", "host", r.cfg.Host, "container", pub.Name, "id", pub.ID, "reason", pub.Rejected)
	}
	return changed, err
}

// put writes one record, within CallTimeout, unless the cache says the key
// holds the same bytes (by hash); it reports whether they differed. The
// write compares the key's ModRevision with the cached one, so it carries
// the value once and never overwrites a foreign change unseen.
func (r *Reporter) put(ctx context.Context, key string, value []byte) (bool, error) {
	known := r.cache[key]
	ctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	v, wrote, err := store.PutIfChanged(ctx, r.kv, key, value, known)
	if err != nil {
		return false, err
	}
	r.cache[key] = v
	if wrote {
		r.m.writes.Inc()
		r.log.Debug("container record written", "key", key)
	}
	return v != known, nil
}

func (r *Reporter) delete(ctx context.Context, key string) error {
	if _, ok := r.cache[key]; !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	// A delete is safe to repeat after a lost leader.
	if err := store.Attempts(ctx, func(ctx context.Context) error { _, err := r.kv.Delete(ctx, key); return err }); err != nil {
		return fmt.Errorf("delete %q: %w", key, err)
	}
	delete(r.cache, key)
	r.m.writes.Inc()
	r.log.Debug("container record deleted", "key", key)
	return nil
}

// MatchLabels reports whether labels carry every filter ("key" or
// "key=value"). No filters match everything.
func MatchLabels(labels map[string]string, filters []string) bool {
	for _, f := range filters {
		k, v, hasValue := strings.Cut(f, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// CheckAdvertiseAddr accepts the zero address (none) or one unicast
// address without a zone that another host can connect to: not
// unspecified, multicast, link-local or the broadcast address. Loopback is
// accepted, for a single machine's test hosts; a proxy refuses it as an
// upstream unless it permits loopback upstreams.
func CheckAdvertiseAddr(a netip.Addr) error {
	if !a.IsValid() {
		return nil
	}
	u := a.Unmap()
	switch {
	case a.Zone() != "":
		return fmt.Errorf("advertise address %s: has an IPv6 zone", a)
	case u.IsUnspecified():
		return fmt.Errorf("advertise address %s: unspecified; give the address other hosts reach this one at", a)
	case u.IsMulticast() || u.IsLinkLocalUnicast() || u == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("advertise address %s: not a unicast address other hosts can reach", a)
	}
	return nil
}

// startBeat runs the heartbeat, if the reporter has one and it is not
// running, until stopBeat or ctx's end.
func (r *Reporter) startBeat(ctx context.Context) {
	if r.beat == nil || r.beatStop != nil {
		return
	}
	bctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.beat.Run(bctx) }()
	r.beatStop = func() { cancel(); <-done }
}

// stopBeat stops the heartbeat without revoking its lease.
func (r *Reporter) stopBeat() {
	if r.beatStop != nil {
		r.beatStop()
		r.beatStop = nil
	}
}
