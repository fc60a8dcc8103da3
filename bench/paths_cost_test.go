package bench

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// PATHS: nginx CPU per request (master and workers, /proc ticks) for a
// vhost without paths, and for a vhost with nine path prefixes: a request
// the root serves (every prefix compared, none matches), one the longest
// prefix serves, and one with strip-path (the path rewritten). Interleaved
// over 3 rounds; ratios to the vhost without paths of the same run. One
// backend container serves every vhost and path.
// PORTICO_BENCH_ARGS=--nginx-dynamic=off measures the static path.
func BenchmarkPathsCPU(b *testing.B) {
	for b.Loop() {
		d := newDocker(b)
		net := d.Network(b, "paths")
		r := startRunOwn(b, d, net)
		plain := "plain-" + d.RunID + ".test"
		pathed := "pathed-" + d.RunID + ".test"
		backend(b, d, net, "plain", map[string]string{"portico.vhost": plain, "portico.https": "off"})
		backend(b, d, net, "root", map[string]string{"portico.vhost": pathed, "portico.https": "off"})
		for i := range 8 {
			backend(b, d, net, fmt.Sprintf("p%d", i), map[string]string{"portico.vhost": pathed, "portico.https": "off",
				"portico.path": fmt.Sprintf("/p%d/", i)})
		}
		backend(b, d, net, "strip", map[string]string{"portico.vhost": pathed, "portico.https": "off",
			"portico.path": "/p7/deeper/", "portico.strip-path": "true"})
		waitLive(b, r, plain)
		waitLive(b, r, pathed)
		variants := []struct{ name, host, path string }{
			{"no paths", plain, "/x"},
			{"root of 9 prefixes", pathed, "/x"},
			{"longest prefix", pathed, "/p0/x"},
			{"strip-path", pathed, "/p7/deeper/x"},
		}
		const (
			rounds  = 3
			n       = 8000
			perConn = 500 // below nginx's keepalive_requests
		)
		sums := make([]int64, len(variants))
		for range rounds {
			for i, v := range variants {
				req := "GET " + v.path + " HTTP/1.1\r\nHost: " + v.host + "\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
				pids, err := nginxProcs(nginxPIDFile(r.dataDir))
				if err != nil {
					b.Fatal(err)
				}
				before, err := cpuTicks(pids)
				if err != nil {
					b.Fatal(err)
				}
				for k := 0; k < n; k += perConn {
					if err := sendN(r.http, req, perConn); err != nil {
						b.Fatalf("%s: %v", v.name, err)
					}
				}
				after, err := cpuTicks(pids)
				if err != nil {
					b.Fatal(err)
				}
				sums[i] += after - before
			}
		}
		var parts []string
		for i, v := range variants {
			per := time.Duration(sums[i]) * tick / (rounds * n)
			parts = append(parts, fmt.Sprintf("%s %.1f µs (%.3f)", v.name, float64(per.Nanoseconds())/1000, float64(sums[i])/float64(sums[0])))
		}
		b.Logf("PATHS: nginx CPU per request, %d × %d requests each, ratio to a vhost without paths: %s", rounds, n, strings.Join(parts, " · "))
	}
}
