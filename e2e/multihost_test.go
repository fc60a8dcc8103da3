package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
	"github.com/portico/portico/internal/testenv/etcdcluster"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// TestMultiHostTwoDaemonsTwoProxies runs Portico's multi-host design on
// this machine's own test hosts (issue 17 §4), every part real:
//
//   - a three-member etcd cluster with TLS (client certificates), serving
//     clients on the root namespace's address of a private LAN the test
//     makes (dockertest.LAN: a bridge in a namespace of its own);
//   - Docker host "a": the shared daemon, its reporter in the root
//     namespace (--advertise-addr: the root namespace's LAN address);
//   - Docker host "b": a second dockerd the test starts on test host b (its
//     own network namespace, socket, data root and bridge, --live-restore),
//     its reporter inside that namespace, reaching etcd over the LAN;
//   - two nginx stages on different hosts: node "a" in the root namespace,
//     node "c" on test host c (no Docker), reaching etcd over the LAN.
//
// It proves:
//   - a container on b, published on all its addresses, is served by both
//     proxies through b's address and the published port; a container on
//     a, published on a's LAN address only, is served by node a at its
//     container address and by node c at a's address and published port;
//   - a container on b with no published port is an error naming it, its
//     port and its node, in each proxy's log and in `portico status --node
//     c`; the rest keeps working;
//   - b's dockerd and reporter stop under steady load (a Go client through
//     both proxies): the containers keep running (live-restore), b goes
//     stale in `portico status --json` and both proxies' metrics, and its
//     route is served with 0 failed requests until the host expiry; then it
//     leaves both proxies while a's route stays, and b's records are still
//     in etcd (nothing deletes another host's records);
//   - b comes back (dockerd adopts its running containers, the reporter
//     resyncs): b is live and its route served by both proxies again.
//
// Figures logged: a container started on b live on both proxies; b stale
// after the stop; requests and failures across the stop.
func TestMultiHostTwoDaemonsTwoProxies(t *testing.T) {
	t.Parallel()
	const expiry = 25 * time.Second // --host-expiry: counted from b's last-seen time, its reporter's start
	a := dockertest.New(t)
	img := a.Image(t)
	lan := dockertest.NewLAN(t)
	hostB, hostC := lan.AddHost(t, "b"), lan.AddHost(t, "c")
	daemonB := dockertest.StartDaemon(t, hostB)
	daemonB.LoadImages(t, a.Client, img)
	b := daemonB.Env(a.RunID)

	etcdBin, err := etcdcluster.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cluster := etcdcluster.StartAt(t, etcdBin, 3, true, lan.Root)
	etcd := cluster.Flags()
	keys := store.NewKeys(store.DefaultPrefix)
	cli := cluster.Client(t)

	// Proxies: node a in the root namespace, node c on test host c.
	netA := a.Network(t, "mh")
	httpA, metricsA := addr(freePort(t)), addr(freePort(t))
	httpC := netip.AddrPortFrom(hostC.Addr, uint16(freePort(t))).String()
	metricsC := netip.AddrPortFrom(hostC.Addr, uint16(freePort(t))).String()
	proxy := func(node, http, metrics string) []string {
		return append([]string{"nginx", "--data-dir", t.TempDir(), "--node", node, "--instance", "proxy-" + node,
			"--http-addr", http, "--https-addr", "", "--metrics-addr", metrics, "--host-expiry", expiry.String()}, etcd...)
	}
	proxyA := start(t, nil, append(proxy("a", httpA, metricsA), "--network", netA)...)
	proxyC := mhStartOn(t, hostC, proxy("c", httpC, metricsC)...)
	proxies := []mhProxy{{"a", httpA, metricsA, proxyA}, {"c", httpC, metricsC, proxyC}}

	reporter := func(host, advertise string, more ...string) []string {
		return append(append([]string{"reporter", "--host", host, "--label-filter", a.LabelFilter(),
			"--advertise-addr", advertise, "--heartbeat-ttl", "2s"}, etcd...), more...)
	}
	start(t, nil, reporter("a", lan.Root.String())...)

	// A container on a, published on a's LAN address only (never on all
	// of the shared machine's addresses).
	vhostA := "mh-a-" + a.RunID + ".test"
	idA := a.Run(t, dockertest.RunOptions{Name: "web-a", Network: netA, PublishIP: lan.Root, Publish: map[string]string{"80/tcp": ""},
		Labels: map[string]string{routing.LabelVhost: vhostA}, NoStart: true})
	// The reference for b's figure below: a container of the shared
	// daemon, started and live on both proxies, in the same run.
	t0 := time.Now()
	a.Start(t, idA)
	liveA := mhLiveOn(t, t0, proxies, vhostA, a.Name("web-a"))

	// Host b: its reporter runs on b. Its heartbeat's first write is b's
	// last-seen time, from which the expiry counts.
	reporterB := mhStartOn(t, hostB, reporter("b", hostB.Addr.String(), "--docker-host", daemonB.Socket)...)
	statusArgs := append([]string{"--host-expiry", expiry.String()}, etcd...)
	eventually(t, 30*time.Second, "host b live in portico status", func() error { return mhHostState(statusArgs, "b", "live") })

	vhostB := "mh-b-" + a.RunID + ".test"
	idB := b.Run(t, dockertest.RunOptions{Name: "web-b", PublishIP: netip.IPv4Unspecified(), Publish: map[string]string{"80/tcp": ""},
		Labels: map[string]string{routing.LabelVhost: vhostB}, NoStart: true})
	t0 = time.Now()
	b.Start(t, idB)
	liveB := mhLiveOn(t, t0, proxies, vhostB, b.Name("web-b"))
	t.Logf("a container started on daemon b: live on both proxies after %s; one started on the shared daemon (a), in the same run: %s; ratio %.2f (load %s)",
		liveB.Round(time.Millisecond), liveA.Round(time.Millisecond), liveB.Seconds()/liveA.Seconds(), mhLoadAvg())

	// No published port: an error naming the container, its port and its
	// node, in each proxy's log; the other routes are unaffected.
	b.Run(t, dockertest.RunOptions{Name: "hidden-b", Labels: map[string]string{routing.LabelVhost: "mh-hidden-" + a.RunID + ".test"}})
	for _, p := range proxies {
		// slog's text handler quotes the error: its quotes are escaped.
		want := `container \"` + b.Name("hidden-b") + `\"`
		eventually(t, 30*time.Second, "node "+p.name+" logs the unpublished container", func() error {
			for _, line := range strings.Split(p.p.Output(), "\n") {
				if strings.Contains(line, want) && strings.Contains(line, `container port 80/tcp is not published on node \"b\"`) {
					return nil
				}
			}
			return fmt.Errorf("no log line with %s and 'container port 80/tcp is not published on node \"b\"'", want)
		})
		if err := expect200(p.http, vhostB, b.Name("web-b")); err != nil {
			t.Errorf("node %s: %v", p.name, err)
		}
	}
	// `portico status --node c` shows node c's view: web-b at b's address
	// and published port, hidden-b an error naming it.
	portB := b.Inspect(t, idB).NetworkSettings.Ports
	var wantAddrB string
	for _, bs := range portB {
		for _, pb := range bs {
			wantAddrB = netip.AddrPortFrom(hostB.Addr, mhPort(t, pb.HostPort)).String()
		}
	}
	eventually(t, 10*time.Second, "portico status --node c", func() error {
		st, err := porticotest.TryStatusJSON(binary, append(statusArgs, "--node", "c")...)
		if err != nil {
			return err
		}
		if c := mhContainer(st, b.Name("web-b")); c == nil || c["addr"] != wantAddrB || c["live"] != true {
			return fmt.Errorf("web-b: %v, want live at %s", c, wantAddrB)
		}
		ps, _ := st["problems"].([]any)
		for _, p := range ps {
			if m, ok := p.(map[string]any); ok && m["container"] == b.Name("hidden-b") &&
				strings.Contains(fmt.Sprint(m["message"]), `container port 80/tcp is not published on node "b"`) {
				return nil
			}
		}
		return fmt.Errorf("no problem naming %s: %v", b.Name("hidden-b"), ps)
	})
	recordsB := mhCount(t, cli, keys.HostContainers("b"))
	if recordsB != 2 {
		t.Fatalf("host b has %d records, want 2 (web-b, hidden-b)", recordsB)
	}

	// Steady load on b's route through both proxies.
	loads := make([]*mhLoad, len(proxies))
	for i, p := range proxies {
		loads[i] = mhStartLoad(p.http, vhostB, "name="+b.Name("web-b"))
	}
	t.Cleanup(func() {
		for _, l := range loads {
			l.stop()
		}
	})
	eventually(t, 10*time.Second, "steady load", func() error {
		for _, l := range loads {
			if s := l.snapshot(); s.ok < 100 || len(s.fails) > 0 {
				return fmt.Errorf("through %s: %d answered, %d failed", l.addr, s.ok, len(s.fails))
			}
		}
		return nil
	})

	// The fault: b's dockerd stops (its containers keep running), then its
	// reporter.
	stopped := time.Now()
	daemonB.Stop(t)
	reporterB.Stop()
	t.Logf("dockerd and reporter on b stopped in %s", time.Since(stopped).Round(time.Millisecond))
	var expiresAt time.Time
	eventually(t, 15*time.Second, "host b stale in portico status and in both proxies' metrics", func() error {
		st, err := porticotest.TryStatusJSON(binary, statusArgs...)
		if err != nil {
			return err
		}
		h := mhHost(st, "b")
		if h == nil || h["state"] != "stale" {
			return fmt.Errorf("host b: %v", h)
		}
		// (Its "live" is the view of a proxy with no --node, which status
		// takes: not this test's proxies'. They are asked below.)
		if c := mhContainer(st, b.Name("web-b")); c == nil || c["host_state"] != "stale" || c["state"] != "running" {
			return fmt.Errorf("container web-b: %v, want running with host_state stale", c)
		}
		if expiresAt, err = time.Parse(time.RFC3339Nano, fmt.Sprint(h["expires_at"])); err != nil {
			return fmt.Errorf("host b expires_at: %v", err)
		}
		for _, p := range proxies {
			if v, err := mhGauge(p.metrics, "portico_nginx_hosts", "stale"); err != nil || v != 1 {
				return fmt.Errorf("node %s: portico_nginx_hosts{state=stale} = %v, %v", p.name, v, err)
			}
			if v, err := mhGauge(p.metrics, "portico_nginx_host_containers", "stale"); err != nil || v != float64(recordsB) {
				return fmt.Errorf("node %s: portico_nginx_host_containers{state=stale} = %v, %v; want %d", p.name, v, err, recordsB)
			}
		}
		return nil
	})
	staleAt := time.Now()
	t.Logf("host b stale %s after the stop; expires %s later", staleAt.Sub(stopped).Round(time.Millisecond), time.Until(expiresAt).Round(time.Millisecond))
	if time.Until(expiresAt) < 3*time.Second {
		t.Fatalf("host b expires at %s, %s after it was seen stale: the setup took too long to see the stale window", expiresAt, expiresAt.Sub(staleAt))
	}
	for _, p := range proxies {
		if err := expect200(p.http, vhostB, b.Name("web-b")); err != nil {
			t.Errorf("node %s, host b stale: %v", p.name, err)
		}
	}
	if n := mhCount(t, cli, keys.HostContainers("b")); n != recordsB {
		t.Errorf("host b stale: %d records, want the %d it had", n, recordsB)
	}

	// At the expiry b's route leaves both proxies; a's stays.
	for _, p := range proxies {
		eventually(t, time.Until(expiresAt)+10*time.Second, "b's route gone from node "+p.name+" after the expiry", func() error {
			code, body, err := get(p.http, vhostB)
			if err == nil && strings.Contains(body, "name=") {
				return fmt.Errorf("still served: %d %q", code, body)
			}
			return nil
		})
	}
	gone := time.Now()
	for _, l := range loads {
		l.stop()
	}
	t.Logf("b's route gone %s after the stop, %s after its expiry time", gone.Sub(stopped).Round(time.Millisecond), gone.Sub(expiresAt).Round(time.Millisecond))
	for i, p := range proxies {
		s := loads[i].snapshot()
		early := s.failuresBefore(expiresAt)
		t.Logf("node %s: %d requests to b's route before its expiry, %d of them from b's stop on; %d failed (%d after the expiry, as they should)",
			p.name, s.okBetween(time.Time{}, expiresAt)+early, s.okBetween(stopped, expiresAt), early, len(s.fails)-early)
		if early > 0 {
			t.Errorf("node %s: %d requests to b's route failed before host b's expiry (%s); first: %s", p.name, early, expiresAt, s.firstErr)
		}
		if err := expect200(p.http, vhostA, a.Name("web-a")); err != nil {
			t.Errorf("node %s after b expired: a's route: %v", p.name, err)
		}
		if v, err := mhGauge(p.metrics, "portico_nginx_hosts", "expired"); err != nil || v != 1 {
			t.Errorf("node %s: portico_nginx_hosts{state=expired} = %v, %v; want 1", p.name, v, err)
		}
	}
	if n := mhCount(t, cli, keys.HostContainers("b")); n != recordsB {
		t.Errorf("host b expired: %d records, want the %d it had: nothing deletes another host's records", n, recordsB)
	}

	// b comes back: its dockerd adopts the containers that kept running,
	// its reporter resyncs its own records and beats again, and both
	// proxies serve b's route again.
	back := time.Now()
	daemonB.Start(t)
	mhStartOn(t, hostB, reporter("b", hostB.Addr.String(), "--docker-host", daemonB.Socket)...)
	again := mhLiveOn(t, back, proxies, vhostB, b.Name("web-b"))
	t.Logf("b's dockerd and reporter started again: b's route served by both proxies %s later", again.Round(time.Millisecond))
	eventually(t, 10*time.Second, "host b live again", func() error { return mhHostState(statusArgs, "b", "live") })
	if n := mhCount(t, cli, keys.HostContainers("b")); n != recordsB {
		t.Errorf("host b back: %d records, want %d", n, recordsB)
	}
}

// mhProxy is one nginx stage of the test: its node, HTTP and metrics
// addresses, and process.
type mhProxy struct {
	name, http, metrics string
	p                   *proc
}

// mhLiveOn polls every proxy until each answers host with name's body, and
// returns the time from t0 to the last one.
func mhLiveOn(t testing.TB, t0 time.Time, proxies []mhProxy, host, name string) time.Duration {
	t.Helper()
	pending := map[string]bool{}
	for _, p := range proxies {
		pending[p.http] = true
	}
	var last time.Duration
	eventually(t, 30*time.Second, host+" served by every proxy", func() error {
		for h := range pending {
			if err := expect200(h, host, name); err != nil {
				return err
			}
			delete(pending, h)
			last = time.Since(t0)
		}
		return nil
	})
	return last
}

func mhPort(t testing.TB, s string) uint16 {
	t.Helper()
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		t.Fatalf("port %q: %v", s, err)
	}
	return uint16(p)
}

// mhStartOn runs portico in test host h's network namespace.
func mhStartOn(t testing.TB, h *dockertest.NetHost, args ...string) *proc {
	t.Helper()
	return porticotest.Start(t, "ip", nil, append([]string{"netns", "exec", h.NS, binary}, args...)...)
}

func mhHostState(statusArgs []string, host, want string) error {
	st, err := porticotest.TryStatusJSON(binary, statusArgs...)
	if err != nil {
		return err
	}
	if h := mhHost(st, host); h == nil || h["state"] != want {
		return fmt.Errorf("host %s: %v, want state %s", host, h, want)
	}
	return nil
}

func mhHost(st map[string]any, host string) map[string]any {
	hs, _ := st["hosts"].([]any)
	for _, h := range hs {
		if m, ok := h.(map[string]any); ok && m["host"] == host {
			return m
		}
	}
	return nil
}

func mhContainer(st map[string]any, name string) map[string]any {
	cs, _ := st["containers"].([]any)
	for _, c := range cs {
		if m, ok := c.(map[string]any); ok && m["name"] == name {
			return m
		}
	}
	return nil
}

func mhCount(t testing.TB, cli *clientv3.Client, prefix string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return int(resp.Count)
}

// mhGauge scrapes metricsAddr and returns the sample of name labelled
// state="<state>".
func mhGauge(metricsAddr, name, state string) (float64, error) {
	resp, err := porticotest.PlainClient.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, `state="`+state+`"`) {
			continue
		}
		f := strings.Fields(line[strings.LastIndex(line, "}")+1:])
		if len(f) == 0 {
			continue
		}
		return strconv.ParseFloat(f[0], 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s{state=%q} not exported", name, state)
}

// mhLoad is a Go client requesting one vhost through one proxy in a loop,
// one request per connection, until stopped; bounded to 2 minutes and
// 200,000 requests.
type mhLoad struct {
	addr string
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	mu sync.Mutex
	s  mhLoadStats
}

type mhLoadStats struct {
	ok       int
	okAt     []time.Time // answers' times, to count those after an instant
	fails    []time.Time
	firstErr string
}

func mhStartLoad(addr, host, want string) *mhLoad {
	l := &mhLoad{addr: addr, done: make(chan struct{})}
	deadline := time.Now().Add(2 * time.Minute)
	l.wg.Go(func() {
		for n := 0; n < 200_000 && time.Now().Before(deadline); n++ {
			select {
			case <-l.done:
				return
			default:
			}
			code, body, err := get(addr, host)
			at := time.Now()
			l.mu.Lock()
			if err == nil && code == 200 && strings.Contains(body, want) {
				l.s.ok++
				l.s.okAt = append(l.s.okAt, at)
			} else {
				if l.s.firstErr == "" {
					l.s.firstErr = fmt.Sprintf("%s: %d %q %v", at.Format(time.RFC3339Nano), code, body, err)
				}
				l.s.fails = append(l.s.fails, at)
			}
			l.mu.Unlock()
		}
	})
	return l
}

func (l *mhLoad) stop() {
	l.once.Do(func() { close(l.done) })
	l.wg.Wait()
}

func (l *mhLoad) snapshot() mhLoadStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.s
	s.okAt = append([]time.Time(nil), l.s.okAt...)
	s.fails = append([]time.Time(nil), l.s.fails...)
	return s
}

// failuresBefore counts the failures answered before t.
func (s mhLoadStats) failuresBefore(t time.Time) int {
	n := 0
	for _, at := range s.fails {
		if at.Before(t) {
			n++
		}
	}
	return n
}

// okBetween counts the successes answered in [from, t).
func (s mhLoadStats) okBetween(from, t time.Time) int {
	n := 0
	for _, at := range s.okAt {
		if !at.Before(from) && at.Before(t) {
			n++
		}
	}
	return n
}

// mhLoadAvg is the machine's 1, 5 and 15 minute load averages, for figures.
func mhLoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
