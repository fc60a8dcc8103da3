// Package bench measures Portico against its performance goals with real
// parts: the Docker Engine, etcd, nginx (and wrk for load). It is not part
// of the CI test run; run it with
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 60m ./bench/
//
// and copy the "P<n>:" lines it logs into docs/benchmarks.md.
package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// binary is the portico executable built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		// `go test ./...` runs no benchmark here: skip the build.
		os.Exit(m.Run())
	}
	// The decoy container runs beside the benchmarks: every portico must
	// ignore it (porticotest.Start checks at the end of each).
	dm := dockertest.WithDecoy(m)
	// BENCH_PORTICO_BIN runs the benchmarks against another build (an
	// older commit's, for a before/after in one session) instead of this
	// tree's.
	if bin := os.Getenv("BENCH_PORTICO_BIN"); bin != "" {
		binary = bin
		os.Exit(dm.Run())
	}
	porticotest.Main(dm, &binary)
}

var (
	freePort = porticotest.FreePort
	addr     = porticotest.Addr
	get      = porticotest.Get
	metric   = porticotest.Metric
)

// run is a `portico run` under measurement.
type run struct {
	proc    *porticotest.Proc
	dataDir string
	http    string
	metrics string
	cli     *clientv3.Client
	keys    store.Keys
}

// startRun starts `portico run` (embedded etcd, HTTP only) and waits for
// its default 404.
func startRun(b *testing.B, d *dockertest.Env, network string, extra ...string) *run {
	b.Helper()
	r := &run{dataDir: b.TempDir(), http: addr(freePort(b)), metrics: addr(freePort(b)), keys: store.NewKeys(store.DefaultPrefix)}
	args := append([]string{"run", "--data-dir", r.dataDir, "--http-addr", r.http, "--https-addr", "",
		"--metrics-addr", r.metrics, "--network", network, "--host", "bench-" + d.RunID, "--log-level", "warn"}, extra...)
	// Only this benchmark's containers: the daemon is shared.
	if !slices.Contains(extra, "--label-filter") {
		args = append(args, "--label-filter", d.LabelFilter())
	}
	// PORTICO_BENCH_ARGS adds flags to every `portico run`, e.g.
	// "--nginx-dynamic=off" for the static path's column in the same run.
	args = append(args, strings.Fields(os.Getenv("PORTICO_BENCH_ARGS"))...)
	r.proc = porticotest.Start(b, binary, nil, args...)
	porticotest.Eventually(b, 60*time.Second, "portico run serves its default 404", func() error {
		code, _, err := get(r.http, "unknown.invalid")
		if err == nil && code != 404 {
			err = fmt.Errorf("unknown host got %d", code)
		}
		return err
	})
	ep, err := store.ReadEndpoint(r.dataDir)
	if err != nil {
		b.Fatal(err)
	}
	if r.cli, err = store.Connect(store.Config{Endpoints: []string{ep}}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.cli.Close() })
	return r
}

// synthHost is the vhost of synthetic record i.
func synthHost(runID string, i int) string { return fmt.Sprintf("s%05d-%s.test", i, runID) }

// writeSynthetic writes container records [from, to) straight into etcd, as
// a reporter on host "synthetic" would, each pointing at backendIP on
// network. HTTPS is off so the certs stage issues nothing.
func writeSynthetic(b *testing.B, r *run, runID, network, backendIP string, from, to int) {
	b.Helper()
	writeSyntheticTLS(b, r, runID, network, backendIP, from, to, false)
}

// writeSyntheticTLS is writeSynthetic; with https the records leave
// portico.https unset (auto), so the certs stage issues a local-CA
// certificate for each .test name.
func writeSyntheticTLS(b *testing.B, r *run, runID, network, backendIP string, from, to int, https bool) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var ops []clientv3.Op
	flush := func() {
		if len(ops) == 0 {
			return
		}
		if _, err := r.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			b.Fatalf("write synthetic records: %v", err)
		}
		ops = ops[:0]
	}
	for i := from; i < to; i++ {
		key, v := synthRecordTLS(b, r, runID, network, backendIP, i, https)
		ops = append(ops, clientv3.OpPut(key, v))
		if len(ops) == 100 {
			flush()
		}
	}
	flush()
}

// synthRecord is synthetic record i: running at backendIP on network, or
// only created (no address) when backendIP is "".
func synthRecord(b *testing.B, r *run, runID, network, backendIP string, i int) (key, value string) {
	b.Helper()
	return synthRecordTLS(b, r, runID, network, backendIP, i, false)
}

// synthRecordTLS is synthRecord; with https portico.https is left unset.
func synthRecordTLS(b *testing.B, r *run, runID, network, backendIP string, i int, https bool) (key, value string) {
	b.Helper()
	id := fmt.Sprintf("synthetic%06d", i)
	c := store.Container{ID: id, Name: id, Host: "synthetic-" + runID, Image: "synthetic", State: "running",
		Labels:   map[string]string{"portico.vhost": synthHost(runID, i), "portico.https": "off"},
		Networks: map[string]store.Network{network: {IPv4: backendIP}},
		Ports:    []store.Port{{Port: 80, Proto: "tcp"}},
	}
	if backendIP == "" {
		c.State = "created"
	}
	if https {
		delete(c.Labels, "portico.https")
	}
	v, err := store.Encode(c)
	if err != nil {
		b.Fatal(err)
	}
	return r.keys.Container(c.Host, c.ID), string(v)
}

// waitRoutes waits until the applied config has at least n routes.
func waitRoutes(b *testing.B, r *run, n int, within time.Duration) time.Duration {
	b.Helper()
	t0 := time.Now()
	porticotest.Eventually(b, within, fmt.Sprintf("%d routes applied", n), func() error {
		v, err := metric(r.metrics, "portico_nginx_routes")
		if err == nil && v < float64(n) {
			err = fmt.Errorf("portico_nginx_routes = %v", v)
		}
		return err
	})
	return time.Since(t0)
}

// percentile of sorted durations (nearest rank).
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// machine describes the box for the results table.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 1 {
			if kb, err := strconv.Atoi(f[1]); err == nil {
				mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	nginxV, _ := exec.Command("nginx", "-v").CombinedOutput()
	return fmt.Sprintf("nproc=%d mem=%s cpu=%q %s date=%s", nprocs(), mem, cpu, strings.TrimSpace(string(nginxV)), time.Now().UTC().Format(time.RFC3339))
}

func nprocs() int {
	out, err := exec.Command("nproc").Output()
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

// BenchmarkMachine logs the machine the figures were taken on.
func BenchmarkMachine(b *testing.B) {
	for b.Loop() {
	}
	b.Logf("machine: %s", machine())
}

// needWrk fails clearly when wrk is missing.
func needWrk(b *testing.B) string {
	b.Helper()
	p, err := exec.LookPath("wrk")
	if err != nil {
		b.Fatalf("wrk is not installed (apt-get install wrk): %v", err)
	}
	return p
}

// backend runs one backend container on network and returns its IP.
func backend(b *testing.B, d *dockertest.Env, network, name string, labels map[string]string) (string, string) {
	b.Helper()
	id := d.Run(b, dockertest.RunOptions{Name: name, Network: network, Labels: labels})
	return id, d.IP(b, id, network)
}

// waitLive waits until host answers 200 through r's nginx.
func waitLive(b *testing.B, r *run, host string) {
	b.Helper()
	porticotest.Eventually(b, 30*time.Second, host+" live", func() error {
		code, _, err := get(r.http, host)
		if err == nil && code != 200 {
			err = fmt.Errorf("%s: %d", host, code)
		}
		return err
	})
}

// newDocker is dockertest.New plus a cleanup that can cope with hundreds of
// containers: it force-removes every container of the run by label, 8 at a
// time, each call with its own timeout, and runs before dockertest's own
// (cleanups run last-in first-out), which then only has the networks left.
func newDocker(b *testing.B) *dockertest.Env {
	b.Helper()
	d := dockertest.New(b)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		list, err := d.Client.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: d.Filter()})
		cancel()
		if err != nil {
			b.Errorf("cleanup: list containers of run %s: %v", d.RunID, err)
			return
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, c := range list.Items {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if _, err := d.Client.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
					b.Errorf("cleanup: remove container %s: %v", c.ID, err)
				}
			})
		}
		wg.Wait()
	})
	return d
}
