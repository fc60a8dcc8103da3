package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// handHeaders are the request headers Portico's config sets towards an
// upstream (templates/portico.conf.tmpl, "dynproxy" and "proxyclear"), for
// the hand-written reference of I16.
const handHeaders = `
        proxy_http_version 1.1;
        proxy_connect_timeout 5s;
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $host;
        proxy_set_header X-Forwarded-Port $server_port;
        proxy_set_header X-Forwarded-Ssl off;
        proxy_set_header Forwarded "";
        proxy_set_header X-Forwarded-Prefix "";
        proxy_set_header X-Original-URL "";
        proxy_set_header X-Rewrite-URL "";
        proxy_set_header Upgrade "";
        proxy_set_header Connection "";
        proxy_set_header Proxy "";
        proxy_set_header X-Client-IP "";
        proxy_set_header True-Client-IP "";
        proxy_set_header Client-IP "";
        proxy_set_header X-Cluster-Client-IP "";
        proxy_set_header CF-Connecting-IP "";
        proxy_set_header Fastly-Client-IP "";
        proxy_set_header X-Forwarded-Server "";
        proxy_set_header X-Original-Forwarded-For "";
        proxy_set_header Keep-Alive "";
        proxy_set_header TE "";
        proxy_set_header Trailer "";
        proxy_set_header Proxy-Connection "";
        proxy_set_header Proxy-Authorization "";
        proxy_set_header HTTP2-Settings "";`

// handLogFormat is Portico's access log format (docs/access-log.md), site
// and path from plain variables: what a hand-written config would log.
const handLogFormat = `log_format hand_json escape=json '{"time":"$time_iso8601","site":"$server_name","client":"$remote_addr",'
    '"method":"$request_method","path":"$uri","protocol":"$server_protocol",'
    '"status":$status,"bytes_sent":$bytes_sent,"bytes_received":$request_length,"request_time":$request_time,'
    '"upstream_addr":"$upstream_addr","upstream_time":"$upstream_response_time"}';
`

// handNginxLog runs the hand-written reference with the same headers as
// Portico, writing an access log in Portico's format to logFile when set.
func handNginxLog(b *testing.B, upstream, host, logFile string) (string, int) {
	b.Helper()
	return startHandNginx(b, func(listen string) string {
		log, format := "    access_log off;", ""
		if logFile != "" {
			log, format = "    access_log "+logFile+" hand_json;", handLogFormat
		}
		return fmt.Sprintf(`%supstream backend {
    server %s;
    keepalive 32;
}
server {
    listen %s default_server;
    server_name %s;
%s
    location / {
        proxy_pass http://backend;%s
    }
}
`, format, upstream, listen, host, log, handHeaders)
	}, func(listen string) error {
		if code, _, err := get(listen, host); err != nil || code != 200 {
			return fmt.Errorf("hand-written nginx: %d %v", code, err)
		}
		return nil
	})
}

// I16: the cost of per-site traffic counting and of the access log, as
// keep-alive throughput ratios measured side by side in one run (wrk -c32,
// rounds of 5 s, the order rotated each round): Portico with its counters
// (the default) and without (--site-metrics=false) against a hand-written
// nginx with the same request headers; Portico with its counters and an
// access log against the hand-written nginx writing an equivalent
// access_log. PORTICO_BENCH_ARGS=--nginx-dynamic=off measures the static
// path; I16_BEFORE_BIN adds another build with its counters (before and
// after a change, side by side).
func BenchmarkI16TrafficCost(b *testing.B) {
	wrk := needWrk(b)
	for b.Loop() {
		d := newDocker(b)
		net := d.Network(b, "i16")
		host := "i16-" + d.RunID + ".test"
		_, ip := backend(b, d, net, "i16", map[string]string{"portico.vhost": host, "portico.https": "off"})
		logs := b.TempDir()
		type target struct {
			name, addr string
			pidFile    string // Portico's nginx; or pid for the hand-written one
			pid        int
			rps        []float64
			reqs       float64
			ticks      int64
			failed     int
		}
		runs := []*target{
			{name: "portico metrics"},
			{name: "portico metrics+log"},
			{name: "portico no metrics"},
			{name: "hand"},
			{name: "hand+log"},
		}
		for i, extra := range [][]string{nil, {"--access-log", filepath.Join(logs, "portico.log")}, {"--site-metrics=false"}} {
			r := startRunOwn(b, d, net, extra...)
			waitLive(b, r, host)
			runs[i].addr, runs[i].pidFile = r.http, nginxPIDFile(r.dataDir)
		}
		runs[3].addr, runs[3].pid = handNginxLog(b, ip+":80", host, "")
		runs[4].addr, runs[4].pid = handNginxLog(b, ip+":80", host, filepath.Join(logs, "hand.log"))
		// I16_BEFORE_BIN: another build's portico (the commit before a
		// change) with its counters on, without and with the access log,
		// as two more targets of the same run.
		if before := os.Getenv("I16_BEFORE_BIN"); before != "" {
			this := binary
			binary = before
			r := startRunOwn(b, d, net)
			rl := startRunOwn(b, d, net, "--access-log", filepath.Join(logs, "before.log"))
			binary = this
			waitLive(b, r, host)
			waitLive(b, rl, host)
			runs = append(runs, &target{name: "before: portico metrics", addr: r.http, pidFile: nginxPIDFile(r.dataDir)},
				&target{name: "before: portico metrics+log", addr: rl.http, pidFile: nginxPIDFile(rl.dataDir)})
		}
		const (
			conns  = 32
			rounds = 8
			each   = 5 * time.Second
		)
		for i := range rounds {
			for k := range runs {
				t := runs[(k+i)%len(runs)]
				var pids []int
				var err error
				if t.pidFile != "" {
					pids, err = nginxProcs(t.pidFile)
				} else {
					pids, err = withChildren(t.pid)
				}
				if err != nil {
					b.Fatal(err)
				}
				before, err := cpuTicks(pids)
				if err != nil {
					b.Fatal(err)
				}
				res := runWrk(b, wrk, t.addr, host, conns, each, "")
				after, err := cpuTicks(pids)
				if err != nil {
					b.Fatal(err)
				}
				t.rps = append(t.rps, res.rps)
				t.reqs += res.reqs
				t.ticks += after - before
				t.failed += res.non2xx + res.sockErrors
			}
		}
		mean := func(xs []float64) float64 {
			var s float64
			for _, x := range xs {
				s += x
			}
			return s / float64(len(xs))
		}
		ratio := func(a, c *target) string {
			rs := make([]float64, len(a.rps))
			for i := range a.rps {
				rs[i] = a.rps[i] / c.rps[i]
			}
			slices.Sort(rs)
			med := (rs[(len(rs)-1)/2] + rs[len(rs)/2]) / 2
			return fmt.Sprintf("%.3f (median of rounds %.3f, rounds %.2f–%.2f)", mean(a.rps)/mean(c.rps), med, rs[0], rs[len(rs)-1])
		}
		// nginx CPU per request: steadier than req/s when other work
		// shares the box.
		cpu := func(t *target) float64 { return float64(time.Duration(t.ticks)*tick) / t.reqs / 1000 }
		var parts []string
		for _, t := range runs {
			parts = append(parts, fmt.Sprintf("%s %.0f req/s, nginx CPU %.1f µs/request (failed %d)", t.name, mean(t.rps), cpu(t), t.failed))
		}
		b.Logf("I16: %s", strings.Join(parts, " · "))
		b.Logf("I16: metrics on, log off vs hand-written: %s (goal >= 0.95)", ratio(runs[0], runs[3]))
		b.Logf("I16: metrics on, log on vs hand-written with access_log: %s (goal >= 0.95)", ratio(runs[1], runs[4]))
		b.Logf("I16: metrics on vs off (the counters' own cost): %s", ratio(runs[0], runs[2]))
		b.Logf("I16: metrics off vs hand-written: %s", ratio(runs[2], runs[3]))
		b.Logf("I16: nginx CPU per request, hand-written / Portico (higher is cheaper for Portico): metrics on, log off %.3f · metrics on, log on vs hand+log %.3f · metrics off %.3f · metrics on vs off %.3f",
			cpu(runs[3])/cpu(runs[0]), cpu(runs[4])/cpu(runs[1]), cpu(runs[3])/cpu(runs[2]), cpu(runs[2])/cpu(runs[0]))
		if len(runs) > 5 {
			b.Logf("I16: metrics on, this build vs before: %s; nginx CPU per request before / this build %.3f (%.1f vs %.1f µs)",
				ratio(runs[0], runs[5]), cpu(runs[5])/cpu(runs[0]), cpu(runs[5]), cpu(runs[0]))
			b.Logf("I16: metrics on, log on, this build vs before: %s; nginx CPU per request before / this build %.3f (%.1f vs %.1f µs)",
				ratio(runs[1], runs[6]), cpu(runs[6])/cpu(runs[1]), cpu(runs[6]), cpu(runs[1]))
			b.Logf("I16: before: metrics on vs hand-written: %s; metrics on, log on vs hand-written with access_log: %s", ratio(runs[5], runs[3]), ratio(runs[6], runs[4]))
		}
		b.ReportMetric(mean(runs[0].rps)/mean(runs[3].rps), "metrics-ratio")
		b.ReportMetric(mean(runs[1].rps)/mean(runs[4].rps), "log-ratio")
	}
}
