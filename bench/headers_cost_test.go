package bench

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// HDR: worker CPU per request (nginx master and workers, /proc ticks) for
// a browser-like HTTP/1.1 request without Connection, with "Connection:
// keep-alive", and with a Connection line naming 16 headers (the bound of
// the dynamic path's Lua, docs/nginx.md "Headers to the upstream"),
// interleaved over 3 rounds; figures are ratios to the no-Connection
// variant of the same run. PORTICO_BENCH_ARGS=--nginx-dynamic=off measures
// the static path.
func BenchmarkHeaderConnectionCPU(b *testing.B) {
	for b.Loop() {
		d := newDocker(b)
		net := d.Network(b, "hdr")
		r := startRunOwn(b, d, net)
		host := "hdr-" + d.RunID + ".test"
		backend(b, d, net, "hdr", map[string]string{"portico.vhost": host, "portico.https": "off"})
		waitLive(b, r, host)

		browser := "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
			"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\n" +
			"Accept-Encoding: gzip, deflate, br\r\nCookie: a=b; c=d\r\nUpgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\n" +
			"Sec-Fetch-Mode: navigate\r\nSec-Fetch-Site: none\r\nSec-Fetch-User: ?1\r\nPriority: u=0, i\r\n"
		variants := []struct{ name, extra string }{
			{"no Connection", browser},
			{"Connection: keep-alive", browser + "Connection: keep-alive\r\n"},
			{"Connection naming 16", browser + "Connection: keep-alive, X-A, X-B, X-C, X-D, X-E, X-F, X-G, X-H, X-I, X-J, X-K, X-L, X-M, X-N, X-O\r\nX-A: 1\r\nX-O: 2\r\n"},
		}
		const (
			rounds  = 3
			n       = 8000
			perConn = 500 // below nginx's keepalive_requests
		)
		sums := make([]int64, len(variants))
		for range rounds {
			for i, v := range variants {
				req := "GET / HTTP/1.1\r\nHost: " + host + "\r\n" + v.extra + "\r\n"
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
		b.Logf("HDR: nginx CPU per request, %d × %d requests each, ratio to no Connection: %s", rounds, n, strings.Join(parts, " · "))
	}
}

// sendN sends req n times on one keep-alive connection and reads each
// answer, which must be 200.
func sendN(addr, req string, n int) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(c)
	for range n {
		if _, err := io.WriteString(c, req); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("got %d", resp.StatusCode)
		}
	}
	return nil
}
