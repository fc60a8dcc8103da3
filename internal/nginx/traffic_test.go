package nginx

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/traffic"
)

// siteValue is a gathered series' value: a counter's, or a histogram's
// sample count; -1 when there is no such series.
func siteValue(t testing.TB, reg *prometheus.Registry, name, site, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			if labelOf(m, "site") != site || (code != "" && labelOf(m, "code") != code) {
				continue
			}
			if m.Histogram != nil {
				return float64(m.Histogram.GetSampleCount())
			}
			return m.Counter.GetValue()
		}
	}
	return -1
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// sitesExported lists the site labels of portico_site_requests_total.
func sitesExported(t testing.TB, reg *prometheus.Registry) map[string]bool {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "portico_site_") {
			for _, m := range mf.Metric {
				out[labelOf(m, "site")] = true
			}
		}
	}
	return out
}

// rawRequest sends one request line and header as given, over its own
// connection, and reads the status line.
func rawRequest(t testing.TB, addr, text string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line
}

// Both paths count every request per site in nginx: by status class,
// unknown names under one series, a dead upstream's connect failures; the
// counters survive a reload and carry on over a restart (which resets
// counts); a removed route's series go away. The access log writes one
// JSON line per request, a hostile request line included, without the
// query string.
func TestTrafficCountsPerSite(t *testing.T) {
	for _, dyn := range []bool{true, false} {
		t.Run(map[bool]string{true: "dynamic", false: "static"}[dyn], func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			logPath := filepath.Join(t.TempDir(), "access.log")
			h := startStage(t, false, func(c *Config) {
				c.Dynamic = dyn
				c.Traffic = true
				c.Metrics = reg
				c.AccessLog = logPath
			})
			if h.stage.Traffic() == nil {
				t.Fatal("no traffic monitor with the Lua module installed")
			}
			a, b := echoServer(t, "A"), echoServer(t, "B")
			dead := deadPort(t)
			h.putContainer("a", a, map[string]string{routing.LabelVhost: "a.test"})
			h.putContainer("b", b, map[string]string{routing.LabelVhost: "b.test"})
			h.putContainer("d", dead, map[string]string{routing.LabelVhost: "dead.test"})
			h.want("a.test", 200, "A host=a.test")
			h.want("b.test", 200, "B host=b.test")
			for range 19 {
				h.get("a.test")
			}
			for range 4 {
				h.get("b.test")
			}
			for i := range 3 {
				h.get(fmt.Sprintf("nobody%d.test", i))
			}
			h.want("dead.test", 502, "")
			sendHostile(t, h)

			h.eventually("counts exported", func() error {
				if v := siteValue(t, reg, "portico_site_requests_total", "a.test", "2xx"); v < 20 {
					return fmt.Errorf("a.test 2xx = %v", v)
				}
				if v := siteValue(t, reg, "portico_site_requests_total", "b.test", "2xx"); v != 6 { // h.want's two and 4
					return fmt.Errorf("b.test 2xx = %v", v)
				}
				if v := siteValue(t, reg, "portico_site_requests_total", traffic.Unmatched, "4xx"); v < 3 {
					return fmt.Errorf("unmatched 4xx = %v", v)
				}
				// At least the request line and Host of 20 requests in, and
				// their status lines and bodies out.
				if v := siteValue(t, reg, "portico_site_received_bytes_total", "a.test", ""); v < float64(20*len("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")) {
					return fmt.Errorf("a.test bytes received = %v", v)
				}
				if v := siteValue(t, reg, "portico_site_sent_bytes_total", "a.test", ""); v < float64(20*len("HTTP/1.1 200 OK\r\n\r\nA host=a.test")) {
					return fmt.Errorf("a.test bytes sent = %v", v)
				}
				if v := siteValue(t, reg, "portico_site_upstream_connect_failures_total", "dead.test", ""); v < 1 {
					return fmt.Errorf("dead.test connect failures = %v", v)
				}
				if v := siteValue(t, reg, "portico_site_request_duration_seconds", "a.test", ""); v < 20 {
					return fmt.Errorf("a.test request durations = %v", v)
				}
				if v := siteValue(t, reg, "portico_site_upstream_duration_seconds", "b.test", ""); v != 6 {
					return fmt.Errorf("b.test upstream durations = %v", v)
				}
				return nil
			})
			for s := range sitesExported(t, reg) {
				if !map[string]bool{"a.test": true, "b.test": true, "dead.test": true, traffic.Unmatched: true}[s] {
					t.Fatalf("site label %q is no route", s)
				}
			}

			// A reload keeps the counts.
			before := siteValue(t, reg, "portico_site_requests_total", "b.test", "2xx")
			if _, err := h.stage.sup.Reload(context.Background()); err != nil {
				t.Fatal(err)
			}
			h.get("b.test")
			h.eventually("counts after a reload", func() error {
				if v := siteValue(t, reg, "portico_site_requests_total", "b.test", "2xx"); v != before+1 {
					return fmt.Errorf("b.test 2xx = %v, want %v", v, before+1)
				}
				return nil
			})

			// A restart (the master killed; the supervisor starts another):
			// nginx counts from zero, the export carries on and says so.
			if err := syscall.Kill(h.stage.sup.Pid(), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			h.eventually("the restart seen", func() error {
				if v := siteValue(t, reg, "portico_nginx_traffic_resets_total", "", ""); v != 1 {
					return fmt.Errorf("resets %v", v)
				}
				return nil
			})
			// A request the killed master's last workers answered is lost
			// (they die before their next flush); one to the new nginx
			// counts on top of the old total.
			h.want("b.test", 200, "B")
			h.eventually("counts after a restart", func() error {
				if v := siteValue(t, reg, "portico_site_requests_total", "b.test", "2xx"); v < before+2 {
					return fmt.Errorf("b.test 2xx = %v, want at least %v", v, before+2)
				}
				return nil
			})

			// A removed route's series go away, and nginx forgets them.
			h.deleteKey(h.keys.Container("node1", "b"))
			h.want("b.test", 404, "")
			h.eventually("b.test's series gone", func() error {
				if sitesExported(t, reg)["b.test"] {
					return fmt.Errorf("still exported")
				}
				h.stage.Traffic().Sample(context.Background())
				snap, err := traffic.NewControl(h.stage.settings.Traffic.ControlSocket).Snapshot(context.Background())
				if err != nil {
					return err
				}
				if _, ok := snap.Sites["b.test"]; ok {
					return fmt.Errorf("nginx still counts b.test")
				}
				return nil
			})

			checkAccessLog(t, h, logPath, 20)
		})
	}
}

// deadPort is a loopback port nothing listens on.
func deadPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return p
}

// sendHostile sends a request whose line holds a quote, a backslash, a
// byte over 0x7f, an escaped newline and a secret in the query, and one
// with a control byte, which nginx refuses (400).
func sendHostile(t testing.TB, h *harness) {
	t.Helper()
	status := rawRequest(t, h.http, "GET /x\"y\\z\xff%0A{}?token=secret HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
	if !strings.Contains(status, " 200 ") {
		t.Fatalf("hostile request: %q", status)
	}
	status = rawRequest(t, h.http, "GET /\x01\"}\n HTTP/1.1\r\nHost: a.test\r\n\r\n")
	if !strings.Contains(status, " 400 ") {
		t.Fatalf("request with a control byte: %q", status)
	}
}

// checkAccessLog waits until the access log at logPath holds the hostile
// request, at least n answered a.test requests and a request no route took
// (site "(unmatched)"), every line one JSON object naming a site, no query
// string in any.
func checkAccessLog(t testing.TB, h *harness, logPath string, n int) {
	t.Helper()
	// The access log: one JSON object per line, the hostile one too.
	h.eventually("access log", func() error {
		data, err := os.ReadFile(logPath)
		if err != nil {
			return err
		}
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		var hostile, sites, unmatched int
		for _, l := range lines {
			var e struct {
				Time, Site, Client, Method, Path, Protocol string
				Status                                     int
				BytesSent                                  int     `json:"bytes_sent"`
				BytesReceived                              int     `json:"bytes_received"`
				RequestTime                                float64 `json:"request_time"`
				UpstreamAddr                               string  `json:"upstream_addr"`
				UpstreamTime                               string  `json:"upstream_time"`
			}
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				return fmt.Errorf("line %q: %v", l, err)
			}
			switch e.Site {
			case "":
				return fmt.Errorf("no site: %q", l)
			case traffic.Unmatched:
				if e.Status == 404 {
					unmatched++
				}
			}
			if strings.Contains(l, "secret") {
				return fmt.Errorf("query string logged: %q", l)
			}
			if strings.HasPrefix(e.Path, "/x\"y") {
				hostile++
				// nginx copies bytes over 0x7f as they are; Go reads
				// an invalid UTF-8 byte as U+FFFD.
				if e.Path != "/x\"y\\z\uFFFD%0A{}" || e.Site != "a.test" || e.Client != "127.0.0.1" || e.Status != 200 || e.BytesSent == 0 {
					return fmt.Errorf("hostile line decoded as %+v", e)
				}
			}
			if e.Site == "a.test" && e.Status == 200 && e.UpstreamAddr != "" && e.Time != "" {
				sites++
			}
		}
		if hostile != 1 || sites < n || unmatched < 1 {
			return fmt.Errorf("%d hostile lines, %d a.test lines, %d unmatched 404s in %d:\n%s", hostile, sites, unmatched, len(lines), data)
		}
		return nil
	})
}

// Without the counters (--site-metrics=false, or the static path where
// nginx has no Lua), the access log keeps the same format, and its site
// field still names the route, or "(unmatched)", on both paths.
func TestAccessLogWithoutCounters(t *testing.T) {
	for _, dyn := range []bool{true, false} {
		t.Run(map[bool]string{true: "dynamic", false: "static"}[dyn], func(t *testing.T) {
			logPath := filepath.Join(t.TempDir(), "access.log")
			h := startStage(t, false, func(c *Config) {
				c.Dynamic = dyn
				c.Traffic = false
				c.AccessLog = logPath
			})
			a := echoServer(t, "A")
			h.putContainer("a", a, map[string]string{routing.LabelVhost: "a.test"})
			h.want("a.test", 200, "A host=a.test")
			for range 4 {
				h.get("a.test")
			}
			h.want("nobody.test", 404, "")
			sendHostile(t, h)
			checkAccessLog(t, h, logPath, 5)
		})
	}
}
