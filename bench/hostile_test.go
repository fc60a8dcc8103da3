package bench

import (
	"context"
	"fmt"
	clientv3 "go.etcd.io/etcd/client/v3"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// BenchmarkP8HostileLabel: one record whose portico.vhost is n bytes of
// short invalid names, written into `portico run`'s etcd, then a valid
// record. Reports the time until the valid one is routed (every stage got
// past the hostile one), the process' peak RSS (VmHWM, embedded etcd
// included) and the bytes it logged.
func BenchmarkP8HostileLabel(b *testing.B) {
	for _, n := range []int{30 << 10, 35 << 10, 40 << 10} {
		b.Run(fmt.Sprintf("%dKB", n>>10), func(b *testing.B) {
			for b.Loop() {
				d := newDocker(b)
				net := d.Network(b, "p8")
				r := startRun(b, d, net, "--log-level", "info", "--label-filter", dockertest.RunLabel+"="+d.RunID)
				_, ip := backend(b, d, net, "p8back", nil)
				hwm0 := vmHWM(b, r.proc.Pid())
				log0 := r.proc.LogLen()
				var v strings.Builder
				for i := 0; v.Len() < n; i++ {
					fmt.Fprintf(&v, "h%d_x,", i)
				}
				c := store.Container{ID: "hostile", Name: "hostile", Host: "synthetic-" + d.RunID, Image: "x", State: "running",
					Labels:   map[string]string{"portico.vhost": v.String()[:n]},
					Networks: map[string]store.Network{net: {IPv4: ip}}}
				val, err := store.Encode(c)
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				t0 := time.Now()
				if _, err := r.cli.Put(ctx, r.keys.Container(c.Host, c.ID), string(val)); err != nil {
					b.Fatal(err)
				}
				cancel()
				// The valid record asks for a local certificate: once it is
				// stored, the certs stage too got past the hostile record.
				writeSyntheticTLS(b, r, d.RunID, net, ip, 0, 1, true)
				waitRoutes(b, r, 1, 5*time.Minute)
				porticotest.Eventually(b, 5*time.Minute, "valid record routed after the hostile one", func() error {
					code, _, err := get(r.http, synthHost(d.RunID, 0))
					if err == nil && code != 200 {
						err = fmt.Errorf("valid route: %d", code)
					}
					return err
				})
				took := time.Since(t0)
				porticotest.Eventually(b, 5*time.Minute, "certs stage past the hostile record", func() error {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					resp, err := r.cli.Get(ctx, r.keys.CertBundle(synthHost(d.RunID, 0)), clientv3.WithCountOnly())
					if err == nil && resp.Count == 0 {
						err = fmt.Errorf("no certificate for the valid record yet")
					}
					return err
				})
				hwm := vmHWM(b, r.proc.Pid())
				logged := r.proc.LogLen() - log0
				b.Logf("P8: %d KB hostile vhost label: next record routed %s later; peak RSS %.0f MB (%.0f MB before); %d bytes logged",
					n>>10, took.Round(time.Millisecond), float64(hwm)/1e6, float64(hwm0)/1e6, logged)
				b.ReportMetric(float64(hwm)/1e6, "peak-rss-MB")
				b.ReportMetric(float64(logged), "log-bytes")
				b.ReportMetric(took.Seconds(), "routed-s")
			}
		})
	}
}

// vmHWM is a process' peak resident set size in bytes.
func vmHWM(b *testing.B, pid int) int64 {
	b.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for l := range strings.Lines(string(st)) {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM")
	return 0
}
