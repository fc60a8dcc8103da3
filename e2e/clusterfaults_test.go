package e2e

// Faults on a real three-member etcd cluster with TLS (issue 17, §4), under
// a steady request loop to every proxy: the leader killed, one proxy cut
// off from every member for 30 s, and rolling restarts of every stage.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/testenv/dockertest"
	"github.com/portico/portico/internal/testenv/etcdcluster"
	"github.com/portico/portico/internal/testenv/porticotest"
)

var cfPartition = flag.Duration("cf-partition", 30*time.Second, "how long TestClusterFaults cuts one proxy off from etcd")

// TestClusterFaults runs two reporters, a certs stage and three nginx
// stages (two on the dynamic path, one on the static path, each with its
// own data dir and ports) on a three-member TLS etcd cluster, with a
// request every 10 ms to every proxy, each in turn for every route known
// so far. Across each fault not one request fails:
//  1. the etcd leader is killed (SIGKILL): a container started right
//     after is live on every proxy (figure logged);
//  2. one proxy's links to every member are cut for --cf-partition (30 s):
//     it serves its last good state, says so on /readyz (503) and in
//     portico_store_up, a route added meanwhile is live on the others at
//     once and on it soon after the heal, although the cluster was
//     compacted past its watch (figures logged);
//  3. every reporter, the certs stage and every nginx stage is restarted
//     (the nginx stages in place, by SIGHUP), one at a time, each waited
//     for: no route lost, no certificate
//     re-issued, and a container started afterwards goes live everywhere
//     with a certificate.
func TestClusterFaults(t *testing.T) {
	t.Parallel()
	began := time.Now()
	ebin, err := etcdcluster.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := etcdcluster.Start(t, ebin, 3, true)
	cli := c.Client(t)
	d := dockertest.New(t)
	network := d.Network(t, "cf")

	// The partitioned proxy reaches every member through a forwarder the
	// test cuts and heals.
	var fws []*cfForwarder
	var viaFw []string
	for _, m := range c.Members {
		u, err := url.Parse(m.ClientURL)
		if err != nil {
			t.Fatal(err)
		}
		f := cfForward(t, u.Host)
		fws = append(fws, f)
		viaFw = append(viaFw, "https://"+f.addr())
	}
	flags := c.Flags()
	cutFlags := append([]string{"--etcd-endpoints", strings.Join(viaFw, ",")}, flags[2:]...)

	proxies := []*cfProxy{
		cfStartProxy(t, d, network, "p1", "on", flags),
		cfStartProxy(t, d, network, "p2", "on", cutFlags),
		cfStartProxy(t, d, network, "p3", "off", flags),
	}
	cut := proxies[1]
	reporters := []*cfStage{
		cfStartReporter(t, d, flags, "a"),
		cfStartReporter(t, d, flags, "b"),
	}
	certs := cfStartStage(t, "certs", "", append([]string{"certs", "--network", network}, flags...))
	cfWaitReady(t, certs)

	type route struct{ host, want string }
	var routes []route
	create := func(name, on string, noStart bool) (route, string) {
		host := name + "-" + d.RunID + ".test"
		id := d.Run(t, dockertest.RunOptions{Name: name, Network: network, NoStart: noStart,
			Labels: map[string]string{"portico.vhost": host, cfHostLabel: on}})
		return route{host, d.Name(name)}, id
	}
	run := func(name, on string) route { r, _ := create(name, on, false); return r }
	// liveOn waits until r serves on each proxy and returns when it did
	// on each, from t0.
	liveOn := func(r route, t0 time.Time, ps ...*cfProxy) []time.Duration {
		t.Helper()
		got := make([]time.Duration, len(ps))
		var wg sync.WaitGroup
		for i, p := range ps {
			wg.Go(func() {
				if err := cfPoll(30*time.Second, func() error { return expect200(p.http, r.host, r.want) }); err != nil {
					t.Errorf("%s on %s: %v", r.host, p.name, err)
				}
				got[i] = time.Since(t0).Round(time.Millisecond)
			})
		}
		wg.Wait()
		return got
	}
	for _, r := range []route{run("a0", "a"), run("b0", "b")} {
		routes = append(routes, r)
		liveOn(r, time.Now(), proxies...)
	}
	a0 := routes[0]
	eventually(t, 30*time.Second, "certificate for a0 issued", func() error {
		if _, ok := bundle(t, cli, a0.host); !ok {
			return fmt.Errorf("no bundle for %s", a0.host)
		}
		return nil
	})
	b0, _ := bundle(t, cli, a0.host)

	loads := make([]*cfLoad, len(proxies))
	for i, p := range proxies {
		loads[i] = cfStartLoad(p)
		for _, r := range routes {
			loads[i].add(r.host, r.want)
		}
	}
	addRoute := func(r route) {
		routes = append(routes, r)
		for _, l := range loads {
			l.add(r.host, r.want)
		}
	}
	// phase checks that no request failed since the last phase.
	phase := func(name string) {
		t.Helper()
		var sum, bad int64
		for i, l := range loads {
			total, failed, errs := l.take()
			sum, bad = sum+total, bad+failed
			if failed > 0 || total == 0 {
				t.Errorf("%s: %d of %d requests to %s failed: %v", name, failed, total, proxies[i].name, errs)
			}
		}
		t.Logf("FIGURE %s: %d of %d requests failed (3 proxies, one request per proxy every 10 ms)", name, bad, sum)
	}

	// 1. The leader killed. The container is created before and started
	// right after: its record is written while the cluster elects.
	k1, k1id := create("k1", "a", true)
	leader := c.Leader(t)
	c.Kill(leader)
	killed := time.Now()
	d.Start(t, k1id)
	started := time.Now()
	took := liveOn(k1, started, proxies...)
	t.Logf("FIGURE leader m%d killed: container started %s after the kill, live on p1 p2 p3 %v after its start (%v after the kill)",
		leader, started.Sub(killed).Round(time.Millisecond), took, []time.Duration{took[0] + started.Sub(killed), took[1] + started.Sub(killed), took[2] + started.Sub(killed)})
	addRoute(k1)
	c.Restart(t, leader)
	phase("etcd leader killed")

	// 2. One proxy cut off from every member.
	for _, f := range fws {
		f.cut()
	}
	cutAt := time.Now()
	eventually(t, 20*time.Second, cut.name+" reports the store unreachable", func() error {
		if code, body := cfReady(&cut.cfStage); code != 503 {
			return fmt.Errorf("/readyz %d %q", code, body)
		}
		if v, err := metric(cut.metrics, "portico_store_up"); err != nil || v != 0 {
			return fmt.Errorf("portico_store_up %v %v", v, err)
		}
		return nil
	})
	_, body := cfReady(&cut.cfStage)
	t.Logf("FIGURE partition: %s reports itself unhealthy %s after the cut: /readyz 503 %q", cut.name, time.Since(cutAt).Round(time.Millisecond), strings.TrimSpace(body))
	p1 := run("p1", "b")
	added := time.Now()
	took = liveOn(p1, added, proxies[0], proxies[2])
	t.Logf("FIGURE partition: a route added during it is live on p1 p3 %v after its container started", took)
	// The cluster compacts past the cut proxy's watch: it must list again.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	resp, err := cli.Get(ctx, "cf-compact")
	if err == nil {
		_, err = cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical())
	}
	cancel()
	if err != nil {
		t.Fatalf("compact: %v", err)
	}
	// The cut lasts its whole window; meanwhile the cut proxy must not
	// have learnt of the new route (else the cut leaks).
	cfHold(t, cutAt.Add(*cfPartition), func() error {
		if code, _, err := get(cut.http, p1.host); err == nil && code == 200 {
			return fmt.Errorf("%s serves %s while cut off from etcd", cut.name, p1.host)
		}
		if code, _ := cfReady(&cut.cfStage); code != 503 {
			return fmt.Errorf("%s /readyz %d while cut off", cut.name, code)
		}
		return nil
	})
	for _, f := range fws {
		f.heal()
	}
	healed := time.Now()
	took = liveOn(p1, healed, cut)
	t.Logf("FIGURE partition of %s healed after %s: the route added during it is live on %s %v after the heal",
		cut.name, healed.Sub(cutAt).Round(time.Millisecond), cut.name, took[0])
	eventually(t, 10*time.Second, cut.name+" ready again", func() error {
		if code, body := cfReady(&cut.cfStage); code != 200 {
			return fmt.Errorf("/readyz %d %q", code, body)
		}
		return nil
	})
	t.Logf("FIGURE partition healed: %s /readyz 200 after %s", cut.name, time.Since(healed).Round(time.Millisecond))
	// Its watch was compacted away: it listed again.
	if out := cut.proc.Output(); !strings.Contains(out, "store watch interrupted; listing again") || !strings.Contains(out, "compacted") {
		t.Errorf("%s did not list again after its watch was compacted away", cut.name)
	}
	addRoute(p1)
	phase("one proxy partitioned from etcd for " + cfPartition.String())

	// 3. Rolling restarts, one at a time, each waited for.
	for _, r := range reporters {
		r.proc.Stop()
		r.proc = start(t, nil, r.args...)
		cfWaitResynced(t, r)
	}
	certs.proc.Stop()
	certs.proc = start(t, nil, certs.args...)
	cfWaitReady(t, certs)
	for _, p := range proxies {
		// A restart in place (SIGHUP, `systemctl reload`): the stage
		// stops, leaves nginx serving, execs itself (same pid) and adopts
		// its nginx (docs/nginx.md, Restart and upgrade without a gap).
		// SIGTERM would stop nginx with it (the comparison below).
		master := nginxMaster(t, filepath.Join(p.dataDir, "nginx", "logs", "nginx.pid"))
		killGroupLater(t, master)
		from := len(p.proc.Output())
		if err := syscall.Kill(p.proc.Pid(), syscall.SIGHUP); err != nil {
			t.Fatalf("SIGHUP to %s: %v", p.name, err)
		}
		eventually(t, 30*time.Second, p.name+" restarted in place", func() error {
			if !strings.Contains(p.proc.Output()[from:], rxAdopted) {
				return fmt.Errorf("no adoption logged yet")
			}
			return nil
		})
		if now, err := readPid(filepath.Join(p.dataDir, "nginx", "logs", "nginx.pid")); err != nil || now != master {
			t.Errorf("%s: nginx master %d (%v) after the restart in place, want the same %d", p.name, now, err, master)
		}
		eventually(t, 30*time.Second, p.name+" back", func() error {
			if code, body := cfReady(&p.cfStage); code != 200 {
				return fmt.Errorf("/readyz %d %q", code, body)
			}
			if v, err := metric(p.metrics, "portico_nginx_store_synced"); err != nil || v != 1 {
				return fmt.Errorf("portico_nginx_store_synced %v %v", v, err)
			}
			return nil
		})
	}
	after := run("after", "b")
	took = liveOn(after, time.Now(), proxies...)
	t.Logf("FIGURE after the restarts: a new container is live on p1 p2 p3 %v after its start", took)
	addRoute(after)
	eventually(t, 30*time.Second, "certificate for a container started after the restarts", func() error {
		if _, ok := bundle(t, cli, after.host); !ok {
			return fmt.Errorf("no bundle for %s", after.host)
		}
		return nil
	})
	phase("rolling restarts of 2 reporters, 1 certs stage, 3 nginx stages")
	// For comparison, not asserted: an nginx stage restarted by SIGTERM
	// stops its nginx with it (docs/nginx.md, Stop), and the next one
	// starts a new nginx.
	p := proxies[0]
	p.proc.Stop()
	p.proc = start(t, nil, p.args...)
	eventually(t, 30*time.Second, p.name+" back after SIGTERM", func() error { return expect200(p.http, a0.host, a0.want) })
	n, failed, _ := loads[0].take()
	t.Logf("FIGURE for comparison, %s restarted by SIGTERM instead: %d of %d requests to it failed", p.name, failed, n)
	for _, l := range loads {
		l.end()
	}
	if b1, ok := bundle(t, cli, a0.host); !ok || b1.Serial != b0.Serial {
		t.Errorf("certificate of %s re-issued: serial %s -> %s", a0.host, b0.Serial, b1.Serial)
	}
	roots := localRoots(t, cli)
	for _, p := range proxies {
		if s, err := servedSerial(p.https, a0.host, a0.want, roots); err != nil || s != b0.Serial {
			t.Errorf("%s serves %s over HTTPS with serial %q (%v), want %s", p.name, a0.host, s, err, b0.Serial)
		}
	}
	t.Logf("whole test: %s", time.Since(began).Round(time.Millisecond))
}

// cfHostLabel says which of the test's reporters reports a container.
const cfHostLabel = "cf.host"

// cfStage is one portico stage process and how to start it again.
type cfStage struct {
	name    string
	metrics string
	args    []string
	proc    *proc
}

// cfProxy is an nginx stage.
type cfProxy struct {
	cfStage
	http, https, dataDir string
}

func cfStartStage(t *testing.T, name, metrics string, args []string) *cfStage {
	t.Helper()
	if metrics == "" {
		metrics = addr(freePort(t))
	}
	s := &cfStage{name: name, metrics: metrics, args: append(args, "--metrics-addr", metrics)}
	s.proc = start(t, nil, s.args...)
	return s
}

// cfStartProxy starts an nginx stage on the dynamic path (dynamic "on")
// or the static one ("off") and waits until it serves its default 404.
func cfStartProxy(t *testing.T, d *dockertest.Env, network, name, dynamic string, etcdFlags []string) *cfProxy {
	t.Helper()
	p := &cfProxy{http: addr(freePort(t)), https: addr(freePort(t)), dataDir: t.TempDir()}
	args := append([]string{"nginx", "--data-dir", p.dataDir, "--instance", "cf-" + name + "-" + d.RunID,
		"--http-addr", p.http, "--https-addr", p.https, "--network", network, "--nginx-dynamic", dynamic}, etcdFlags...)
	p.cfStage = *cfStartStage(t, name, "", args)
	waitDefault404(t, p.http)
	return p
}

// cfStartReporter starts the reporter of host name: the test's
// containers labelled cf.host=name.
func cfStartReporter(t *testing.T, d *dockertest.Env, etcdFlags []string, name string) *cfStage {
	t.Helper()
	// Debug: every record written or deleted is logged, so a failure
	// shows which write changed a route (the log is printed on failure).
	args := append([]string{"reporter", "--host", "cf" + name + "-" + d.RunID, "--log-level", "debug",
		"--label-filter", d.LabelFilter() + "," + cfHostLabel + "=" + name}, etcdFlags...)
	r := cfStartStage(t, "reporter "+name, "", args)
	cfWaitResynced(t, r)
	return r
}

// cfWaitResynced waits until a reporter listed its containers.
func cfWaitResynced(t *testing.T, r *cfStage) {
	t.Helper()
	eventually(t, 30*time.Second, r.name+" resynced", func() error {
		v, err := metric(r.metrics, "portico_reporter_resyncs_total")
		if err == nil && v < 1 {
			err = fmt.Errorf("resyncs_total = %v", v)
		}
		return err
	})
}

// cfWaitReady waits until a stage reaches the store (/readyz 200).
func cfWaitReady(t *testing.T, s *cfStage) {
	t.Helper()
	eventually(t, 30*time.Second, s.name+" ready", func() error {
		if code, body := cfReady(s); code != 200 {
			return fmt.Errorf("/readyz %d %q", code, body)
		}
		return nil
	})
}

// cfReady is GET /readyz on a stage's metrics address.
func cfReady(s *cfStage) (int, string) {
	resp, err := porticotest.PlainClient.Get("http://" + s.metrics + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// cfPoll calls f every 20 ms until it returns nil or within passed.
func cfPoll(within time.Duration, f func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		<-time.After(20 * time.Millisecond)
	}
}

// cfHold checks f every 100 ms until the deadline: a fault's window, with
// what must hold during it.
func cfHold(t *testing.T, until time.Time, f func() error) {
	t.Helper()
	for time.Now().Before(until) {
		if err := f(); err != nil {
			t.Fatal(err)
		}
		<-time.After(min(100*time.Millisecond, time.Until(until)))
	}
}

// cfLoad requests one proxy every 10 ms, each time the next of its routes,
// and counts the requests that failed (any error, or not a 200 from the
// route's container).
type cfLoad struct {
	addr string
	stop chan struct{}
	done chan struct{}

	mu            sync.Mutex
	hosts, wants  []string
	total, failed int64
	errs          []string
}

func cfStartLoad(p *cfProxy) *cfLoad {
	l := &cfLoad{addr: p.http, stop: make(chan struct{}), done: make(chan struct{})}
	t0 := time.Now()
	go func() {
		defer close(l.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			l.mu.Lock()
			n := len(l.hosts)
			var host, want string
			if n > 0 {
				host, want = l.hosts[i%n], l.wants[i%n]
			}
			l.mu.Unlock()
			if n == 0 {
				continue
			}
			err := expect200(l.addr, host, want)
			l.mu.Lock()
			l.total++
			if err != nil {
				l.failed++
				if len(l.errs) < 5 {
					l.errs = append(l.errs, fmt.Sprintf("%v at %s", err, time.Since(t0).Round(time.Millisecond)))
				}
			}
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *cfLoad) add(host, want string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hosts, l.wants = append(l.hosts, host), append(l.wants, want)
}

// take returns the counts since the last take and starts again from 0.
func (l *cfLoad) take() (total, failed int64, errs []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	total, failed, errs = l.total, l.failed, l.errs
	l.total, l.failed, l.errs = 0, 0, nil
	return total, failed, errs
}

func (l *cfLoad) end() {
	close(l.stop)
	<-l.done
}

// cfForwarder forwards TCP connections on loopback to one etcd member. Cut
// makes it a partition: nothing crosses in either direction, on the
// connections open and on new ones (accepted, as a SYN would be retried,
// but never answered), until heal lets the held bytes through, as TCP
// would deliver them once the network is back. A side that gives up
// meanwhile (gRPC's keepalive) closes its connection as it would.
type cfForwarder struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	open  chan struct{} // closed while traffic flows
	conns map[net.Conn]bool
	done  bool
}

func cfForward(t *testing.T, target string) *cfForwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &cfForwarder{ln: ln, target: target, open: make(chan struct{}), conns: map[net.Conn]bool{}}
	close(f.open)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	t.Cleanup(f.close)
	return f
}

func (f *cfForwarder) addr() string { return f.ln.Addr().String() }

// gate waits while the link is cut; false once the forwarder is closed.
func (f *cfForwarder) gate() bool {
	f.mu.Lock()
	open, done := f.open, f.done
	f.mu.Unlock()
	<-open
	f.mu.Lock()
	defer f.mu.Unlock()
	return !done
}

func (f *cfForwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		c.Close()
		return false
	}
	f.conns[c] = true
	return true
}

func (f *cfForwarder) serve(c net.Conn) {
	if !f.track(c) || !f.gate() {
		c.Close()
		return
	}
	u, err := net.Dial("tcp", f.target)
	if err != nil {
		c.Close()
		return
	}
	if !f.track(u) {
		c.Close()
		return
	}
	go f.pipe(u, c)
	f.pipe(c, u)
}

// pipe copies src to dst, each chunk once the link lets it through.
func (f *cfForwarder) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if !f.gate() {
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (f *cfForwarder) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.open:
		f.open = make(chan struct{})
	default:
	}
}

func (f *cfForwarder) heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.open:
	default:
		close(f.open)
	}
}

func (f *cfForwarder) close() {
	f.mu.Lock()
	f.done = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.heal()
	f.ln.Close()
}
