package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/testenv/porticotest"
)

// BenchmarkI10PorticoMemory (issue 10, "memory", the portico process's
// share): PSS of the `portico run` process alone (embedded etcd, reporter,
// certs and nginx stages; nginx's own processes are not counted) idle with
// no routes, with 200 synthetic container records, after 10,000 rewrites
// of those records (churn: each rewrite moves a record to another backend
// address, one transaction each, as a reporter writes), 60 s after the
// churn, with 10,000 records, and 60 s after all but one of them were
// deleted. Each figure is split into the part mapped from etcd's bbolt
// file, the Go heap in use (go_memstats_heap_inuse_bytes) and the rest.
//
// To compare two builds in one session, point BENCH_PORTICO_BIN at the
// other binary (see TestMain).
func BenchmarkI10PorticoMemory(b *testing.B) {
	for b.Loop() {
		d := newDocker(b)
		net := d.Network(b, "i10pmem")
		r := startRunOwn(b, d, net)
		// The records point at TEST-NET addresses: nginx only has to accept
		// the config, nothing is proxied.
		const ipA, ipB = "192.0.2.10", "192.0.2.11"
		const small, large, churn = 200, 10000, 10000

		var lines []string
		measure := func(what string) int64 {
			settleStore(b, r, what)
			m := procMem(b, r)
			lines = append(lines, fmt.Sprintf("%-28s %s", what+":", m))
			b.Logf("I10 portico memory: %s: %s", what, m)
			heapProfile(b, r, what)
			return m.pss
		}

		idle := measure("idle, 0 routes")

		writeSynthetic(b, r, d.RunID, net, ipA, 0, small)
		waitRoutes(b, r, small, 2*time.Minute)
		at200 := measure("200 routes")

		// Churn: 10,000 single-record transactions, 4 writers at a time.
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for w := range 4 {
			wg.Go(func() {
				for n := w; n < churn; n += 4 {
					ip := ipA
					if (n/small)%2 == 0 {
						ip = ipB
					}
					key, v := synthRecord(b, r, d.RunID, net, ip, n%small)
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					_, err := r.cli.Put(ctx, key, v)
					cancel()
					if err != nil {
						errs <- fmt.Errorf("churn write %d of %s: %w", n, key, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		b.Logf("I10 portico memory: %d rewrites in %.1f s", churn, time.Since(t0).Seconds())
		afterChurn := measure("after 10,000 rewrites")
		<-time.After(60 * time.Second)
		later := measure("60 s after the rewrites")

		writeSynthetic(b, r, d.RunID, net, ipA, small, large)
		waitRoutes(b, r, large, 5*time.Minute)
		big := measure("10,000 routes")

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if _, err := r.cli.Delete(ctx, r.keys.Containers(), clientv3.WithPrefix()); err != nil {
			cancel()
			b.Fatalf("delete the records: %v", err)
		}
		cancel()
		writeSynthetic(b, r, d.RunID, net, ipA, 0, 1)
		porticotest.Eventually(b, 2*time.Minute, "1 route applied", func() error {
			v, err := metric(r.metrics, "portico_nginx_routes")
			if err == nil && v != 1 {
				err = fmt.Errorf("portico_nginx_routes = %v", v)
			}
			return err
		})
		<-time.After(60 * time.Second)
		one := measure("1 route, 60 s after 10,000")

		b.Logf("I10 portico memory, PSS of the portico process (MB):\n%s", strings.Join(lines, "\n"))
		mb := func(x int64) float64 { return float64(x) / 1e6 }
		b.ReportMetric(mb(idle), "pss-MB/idle")
		b.ReportMetric(mb(at200), "pss-MB/200")
		b.ReportMetric(mb(afterChurn), "pss-MB/churn")
		b.ReportMetric(mb(later), "pss-MB/churn+60s")
		b.ReportMetric(mb(big), "pss-MB/10000")
		b.ReportMetric(mb(one), "pss-MB/1-after-10000")
	}
}

// settleStore waits until the store's revision stops moving for a moment,
// then one pacing window for the last apply.
func settleStore(b *testing.B, r *run, what string) {
	b.Helper()
	var last int64 = -1
	porticotest.Eventually(b, 3*time.Minute, what+": store settled", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := r.cli.Get(ctx, "/portico-bench-revision-probe")
		if err != nil {
			return err
		}
		if resp.Header.Revision != last {
			last = resp.Header.Revision
			return fmt.Errorf("revision moved to %d", last)
		}
		return nil
	})
	<-time.After(3 * time.Second)
}

// memFigures is one look at the portico process's memory.
type memFigures struct {
	pss, bolt, heap, free int64
}

func (m memFigures) String() string {
	mb := func(x int64) float64 { return float64(x) / 1e6 }
	return fmt.Sprintf("PSS %6.1f (bbolt file %5.1f, Go heap in use %5.1f, free not returned %5.1f, rest %5.1f)",
		mb(m.pss), mb(m.bolt), mb(m.heap), mb(m.free), mb(m.pss-m.bolt-m.heap-m.free))
}

// heapProfile saves the portico process's heap profile, after a GC, as
// $BENCH_HEAP_DIR/<what>.pb.gz when that variable is set and the binary
// serves /debug/pprof/heap on its metrics address (a diagnostic build;
// the released binary does not).
func heapProfile(b *testing.B, r *run, what string) {
	b.Helper()
	dir := os.Getenv("BENCH_HEAP_DIR")
	if dir == "" {
		return
	}
	resp, err := http.Get("http://" + r.metrics + "/debug/pprof/heap?gc=1")
	if err != nil {
		b.Fatalf("heap profile: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("heap profile: status %d: %v", resp.StatusCode, err)
	}
	name := strings.NewReplacer(" ", "_", ",", "", "/", "_").Replace(what)
	if err := os.WriteFile(filepath.Join(dir, name+".pb.gz"), raw, 0o644); err != nil {
		b.Fatalf("heap profile: %v", err)
	}
}

// procMem reads the portico process's PSS, the part of it mapped from
// etcd's bbolt file (/proc/<pid>/smaps), and the Go heap in use.
func procMem(b *testing.B, r *run) memFigures {
	b.Helper()
	pid := r.proc.Pid()
	pss, err := pssBytes([]int{pid})
	if err != nil {
		b.Fatal(err)
	}
	bolt, err := mappedPSS(pid, "/member/snap/db")
	if err != nil {
		b.Fatal(err)
	}
	heap, err := metric(r.metrics, "go_memstats_heap_inuse_bytes")
	if err != nil {
		b.Fatal(err)
	}
	idle, err := metric(r.metrics, "go_memstats_heap_idle_bytes")
	if err != nil {
		b.Fatal(err)
	}
	released, err := metric(r.metrics, "go_memstats_heap_released_bytes")
	if err != nil {
		b.Fatal(err)
	}
	return memFigures{pss: pss, bolt: bolt, heap: int64(heap), free: int64(idle - released)}
}

// mappedPSS sums the Pss of pid's mappings whose path ends with suffix.
func mappedPSS(pid int, suffix string) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return 0, fmt.Errorf("smaps of %d: %w", pid, err)
	}
	var sum int64
	in := false
	for l := range strings.Lines(string(raw)) {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") { // a mapping's header line
			in = len(f) >= 6 && strings.HasSuffix(f[len(f)-1], suffix)
			continue
		}
		if in && f[0] == "Pss:" && len(f) >= 2 {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("smaps of %d: %w", pid, err)
			}
			sum += kb << 10
		}
	}
	return sum, nil
}
