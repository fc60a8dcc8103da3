package bench

// Issue 17 §5: the scale run. Many Docker hosts' records in etcd, three nginx
// stages on the dynamic path, and the time one change takes to be served by
// every proxy.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/hosts"
	"github.com/portico/portico/internal/reporter"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/etcdcluster"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// i17Hosts is the number of simulated Docker hosts.
const i17Hosts = 50

// BenchmarkI17Scale measures, for a table of I17_ROUTES routes (default
// "200,10000": the reference and the goal's size) spread over 50 simulated
// Docker hosts, in a three-member etcd cluster (etcdcluster, TLS between
// members and to clients), with three `portico nginx` stages on the
// dynamic path:
//
//   - the time from one etcd write (a new container record) to every proxy
//     serving its vhost (p50, p99 over I17_CHANGES changes, default 40);
//   - etcd writes at rest (10 s) and per change, and what a watcher of the
//     whole prefix receives per change (events, bytes);
//   - each stage's CPU per change and memory: anonymous RSS and PSS of the
//     stage process and of its nginx (master and workers).
//
// The records are synthetic, written straight into etcd, but built by the
// reporter's own code (reporter.Convert of an inspect result, then
// reporter.Record), keyed as 50 reporters would write them; each host has
// a real heartbeat (hosts.Heartbeat, lease and last-seen key). Every
// record points at one backend container.
//
//	go test -run '^$' -bench I17Scale -benchtime 1x -timeout 30m ./bench/
func BenchmarkI17Scale(b *testing.B) {
	sizes := []int{200, 10000}
	if s := os.Getenv("I17_ROUTES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < i17Hosts {
				b.Fatalf("I17_ROUTES %q: want counts of at least %d", s, i17Hosts)
			}
			sizes = append(sizes, n)
		}
	}
	changes := envInt("I17_CHANGES", 40)
	etcdBin, err := etcdcluster.Build(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	d := newDocker(b)
	net := d.Network(b, "i17scale")
	_, ip := backend(b, d, net, "i17back", nil)
	for _, n := range sizes {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			for range b.N {
				i17Run(b, etcdBin, d.RunID, net, ip, n, changes)
			}
		})
	}
}

// i17Proxy is one `portico nginx` stage under measurement.
type i17Proxy struct {
	proc    *porticotest.Proc
	dataDir string
	http    string
	metrics string
}

func (p *i17Proxy) pids(b *testing.B) (stage int, nginx []int) {
	b.Helper()
	ps, err := nginxProcs(nginxPIDFile(p.dataDir))
	if err != nil {
		b.Fatal(err)
	}
	return p.proc.Pid(), ps
}

func i17Run(b *testing.B, etcdBin, runID, netName, ip string, n, changes int) {
	// Three etcd members, TLS between them and to every client.
	etcd := etcdcluster.Start(b, etcdBin, 3, true)
	cli := etcd.Client(b)
	var etcdPids []int
	for _, m := range etcd.Members {
		etcdPids = append(etcdPids, m.Pid())
	}
	keys := store.NewKeys(store.DefaultPrefix)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// 50 heartbeats, as 50 reporters keep them.
	var hbs sync.WaitGroup
	defer hbs.Wait()
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	for h := range i17Hosts {
		hb, err := hosts.NewHeartbeat(hosts.HeartbeatConfig{Host: i17HostName(h), Keys: keys}, cli, log)
		if err != nil {
			b.Fatal(err)
		}
		hbs.Go(func() { hb.Run(ctx) })
	}

	// The records, written in transactions of 100 puts.
	t0 := time.Now()
	var ops []clientv3.Op
	for i := range n {
		k, v := i17Record(b, keys, runID, netName, ip, i%i17Hosts, i)
		ops = append(ops, clientv3.OpPut(k, v))
		if len(ops) == 100 || i == n-1 {
			if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
				b.Fatalf("write records: %v", err)
			}
			ops = ops[:0]
		}
	}
	_, sample := i17Record(b, keys, runID, netName, ip, 0, 0)
	b.Logf("I17 %d routes: %d records (%d bytes each) written in %v", n, n, len(sample), time.Since(t0).Round(time.Millisecond))

	proxies := make([]*i17Proxy, 3)
	for i := range proxies {
		p := &i17Proxy{dataDir: b.TempDir(), http: addr(freePort(b)), metrics: addr(freePort(b))}
		args := append([]string{"nginx"}, etcd.Flags()...)
		p.proc = porticotest.Start(b, binary, nil, append(args, "--data-dir", p.dataDir,
			"--http-addr", p.http, "--https-addr", "", "--metrics-addr", p.metrics, "--network", netName,
			"--nginx-dynamic", "on", "--instance", fmt.Sprintf("proxy%d", i), "--log-level", envOr("I17_LOG", "warn"))...)
		proxies[i] = p
	}
	t0 = time.Now()
	for _, p := range proxies {
		porticotest.Eventually(b, 5*time.Minute, fmt.Sprintf("%d routes on %s", n, p.http), func() error {
			v, err := metric(p.metrics, "portico_nginx_routes")
			if err == nil && v < float64(n) {
				err = fmt.Errorf("portico_nginx_routes = %v", v)
			}
			return err
		})
	}
	b.Logf("I17 %d routes: every proxy has them %v after its start", n, time.Since(t0).Round(time.Millisecond))
	for _, p := range proxies {
		porticotest.Eventually(b, time.Minute, "the last record serves on "+p.http, func() error {
			code, _, err := get(p.http, i17Vhost(runID, n-1))
			if err == nil && code != 200 {
				err = fmt.Errorf("%d", code)
			}
			return err
		})
	}

	// A watcher of the whole prefix counts what etcd sends it.
	var events, evBytes atomic.Int64
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wch := cli.Watch(wctx, store.DefaultPrefix, clientv3.WithPrefix())
	go func() {
		for wr := range wch {
			for _, ev := range wr.Events {
				events.Add(1)
				evBytes.Add(int64(len(ev.Kv.Key) + len(ev.Kv.Value)))
			}
		}
	}()
	rev := func() int64 {
		r, err := cli.Get(ctx, "i17-revision-probe")
		if err != nil {
			b.Fatal(err)
		}
		return r.Header.Revision
	}

	// At rest: 10 s with nothing changing.
	settle(b, rev)
	r0, e0 := rev(), events.Load()
	rest := 10 * time.Second
	restT := time.Now()
	cpu0 := i17CPU(b, proxies)
	porticotest.Eventually(b, time.Minute, "10 s at rest", func() error {
		if time.Since(restT) < rest {
			return fmt.Errorf("at rest for %v", time.Since(restT))
		}
		return nil
	})
	restFor := time.Since(restT)
	cpuRest := i17CPU(b, proxies)
	b.Logf("I17 %d routes: at rest %d etcd writes (%d watch events) in %v, 50 last-seen writes an hour not included; stage CPU at rest %s",
		n, rev()-r0, events.Load()-e0, restFor.Round(time.Millisecond), cpuDelta(cpu0, cpuRest, 1))

	// The changes: a new container on host i%50, live on every proxy.
	lat := make([]time.Duration, 0, changes)
	var writes, evs, bytes int64
	cli0 := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4,
		DialContext: (&net.Dialer{}).DialContext}}
	cpuA := i17CPU(b, proxies)
	etcdA, err := cpuTicks(etcdPids)
	if err != nil {
		b.Fatal(err)
	}
	for c := range changes {
		i := n + c
		k, v := i17Record(b, keys, runID, netName, ip, i%i17Hosts, i)
		host := i17Vhost(runID, i)
		r0, e0, y0 := rev(), events.Load(), evBytes.Load()
		start := time.Now()
		if _, err := cli.Put(ctx, k, v); err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		var slowest atomic.Int64
		for _, p := range proxies {
			wg.Go(func() {
				tk := time.NewTicker(time.Millisecond)
				defer tk.Stop()
				for {
					req, _ := http.NewRequest("GET", "http://"+p.http+"/", nil)
					req.Host = host
					resp, err := cli0.Do(req)
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == 200 {
							d := time.Since(start)
							for {
								old := slowest.Load()
								if int64(d) <= old || slowest.CompareAndSwap(old, int64(d)) {
									break
								}
							}
							return
						}
					}
					if time.Since(start) > 30*time.Second {
						b.Errorf("%s not live on %s after 30 s", host, p.http)
						return
					}
					<-tk.C
				}
			})
		}
		wg.Wait()
		lat = append(lat, time.Duration(slowest.Load()))
		settle(b, rev)
		writes += rev() - r0
		evs += events.Load() - e0
		bytes += evBytes.Load() - y0
	}
	cpuB := i17CPU(b, proxies)
	etcdB, err := cpuTicks(etcdPids)
	if err != nil {
		b.Fatal(err)
	}
	var mem []string
	for i, p := range proxies {
		stage, ng := p.pids(b)
		mem = append(mem, fmt.Sprintf("proxy%d stage %s, nginx %s", i, memOf(b, []int{stage}), memOf(b, ng)))
	}
	b.Logf("I17 %d routes: one change live on all 3 proxies p50 %v p99 %v max %v (%d changes); per change %.1f etcd writes, %.1f watch events, %.0f key+value bytes to a watcher of the whole prefix; stage CPU per change %s",
		n, percentile(lat, 0.5).Round(100*time.Microsecond), percentile(lat, 0.99).Round(100*time.Microsecond), percentile(lat, 1).Round(100*time.Microsecond),
		changes, float64(writes)/float64(changes), float64(evs)/float64(changes), float64(bytes)/float64(changes), cpuDelta(cpuA, cpuB, changes))
	b.Logf("I17 %d routes: memory: %s; etcd's 3 members %s, their CPU per change %.1f ms", n, strings.Join(mem, "; "), memOf(b, etcdPids),
		float64(time.Duration(etcdB-etcdA)*tick)/float64(time.Millisecond)/float64(changes))
	b.Logf("I17 %d routes: load average %s", n, loadAvg())
	if f := os.Getenv("I17_STAGE_LOG"); f != "" {
		// The first proxy's log, for its debug timings.
		if err := os.WriteFile(f, []byte(proxies[0].proc.Output()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
}

// settle waits until etcd's revision has not moved for 300 ms: the stages'
// status writes after a change are done.
func settle(b *testing.B, rev func() int64) {
	b.Helper()
	last, since := rev(), time.Now()
	porticotest.Eventually(b, time.Minute, "etcd quiet for 300 ms", func() error {
		if r := rev(); r != last {
			last, since = r, time.Now()
		}
		if time.Since(since) < 300*time.Millisecond {
			return fmt.Errorf("revision %d moved %v ago", last, time.Since(since))
		}
		return nil
	})
}

func i17HostName(h int) string { return fmt.Sprintf("dockerhost%02d", h) }

func i17Vhost(runID string, i int) string { return fmt.Sprintf("c%06d-%s.test", i, runID) }

// i17Record is container i on host h as that host's reporter would publish
// it: an inspect result through reporter.Convert and reporter.Record.
func i17Record(b *testing.B, keys store.Keys, runID, netName, ip string, h, i int) (string, string) {
	b.Helper()
	id := fmt.Sprintf("%064x", i+1)
	in := container.InspectResponse{
		ID:    id,
		Name:  fmt.Sprintf("/app-%06d", i),
		State: &container.State{Status: container.StateRunning},
		Config: &container.Config{
			Image:        "registry.example/app:1.0",
			Labels:       map[string]string{"portico.vhost": i17Vhost(runID, i), "portico.https": "off", "com.example.team": "web"},
			Env:          []string{"PATH=/usr/bin", "VIRTUAL_PORT=80"},
			ExposedPorts: network.PortSet{network.MustParsePort("80/tcp"): {}},
		},
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
			netName: {IPAddress: netip.MustParseAddr(ip)},
		}},
	}
	host := i17HostName(h)
	c, err := reporter.Convert(host, in, nil)
	if err != nil {
		b.Fatal(err)
	}
	_, v, err := reporter.Record(c, reporter.MaxRecordBytes)
	if err != nil {
		b.Fatal(err)
	}
	return keys.Container(host, id), string(v)
}

// i17CPU is each proxy's CPU ticks so far: the stage process, its nginx.
func i17CPU(b *testing.B, ps []*i17Proxy) [][2]int64 {
	b.Helper()
	out := make([][2]int64, len(ps))
	for i, p := range ps {
		stage, ng := p.pids(b)
		s, err := cpuTicks([]int{stage})
		if err != nil {
			b.Fatal(err)
		}
		g, err := cpuTicks(ng)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = [2]int64{s, g}
	}
	return out
}

func cpuDelta(a, c [][2]int64, per int) string {
	var parts []string
	for i := range a {
		parts = append(parts, fmt.Sprintf("proxy%d stage %.1f ms nginx %.1f ms", i,
			float64(time.Duration(c[i][0]-a[i][0])*tick)/float64(time.Millisecond)/float64(per),
			float64(time.Duration(c[i][1]-a[i][1])*tick)/float64(time.Millisecond)/float64(per)))
	}
	return strings.Join(parts, ", ")
}

// memOf sums anonymous RSS and PSS of pids (smaps_rollup).
func memOf(b *testing.B, pids []int) string {
	b.Helper()
	var anon, pss int64
	for _, p := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p))
		if err != nil {
			b.Fatal(err)
		}
		for l := range strings.Lines(string(raw)) {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "Anonymous:":
				anon += kb
			case "Pss:":
				pss += kb
			}
		}
	}
	return fmt.Sprintf("anon %.1f MiB pss %.1f MiB", float64(anon)/1024, float64(pss)/1024)
}

func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	return strings.Join(f[:3], " ")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
