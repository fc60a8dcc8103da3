package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/nginx/dynamic"
	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/nginx/supervise"
	"github.com/portico/portico/internal/testenv/porticotest"
	"github.com/portico/portico/internal/traffic"
)

// DP (issue 15 section 4): the dynamic path against a hand-written nginx
// with the same headers, no options set, keep-alive, on one and on two
// nginx workers. Both proxy to one nginx backend that answers 200 by
// itself (cheaper than any container, so that the proxies' cost shows).
// No Docker and no etcd: the dynamic nginx loads its table from the state
// file at start, as after a restart, and runs the Lua Portico writes.
// Rounds alternate and swap who goes first (ABBA); each round measures
// req/s (wrk) and nginx CPU per request (utime+stime of the master and
// workers, /proc ticks, over the requests wrk made).
//
//	go test -run '^$' -bench DataPlane -benchtime 1x ./bench/
//
// DP_ROUNDS and DP_SECONDS change the rounds (default 10) and their
// length (default 4 s). Goal: req/s ratio >= 0.95, CPU ratio <= 1.05.
func BenchmarkDataPlane(b *testing.B) {
	wrk := needWrk(b)
	rounds, each := envInt("DP_ROUNDS", 10), time.Duration(envInt("DP_SECONDS", 4))*time.Second
	for b.Loop() {
		backendAddr := startBench(b, 1, func(listen string) string {
			return fmt.Sprintf("server {\n    listen %s;\n    access_log off;\n    location / { return 200 \"ok\\n\"; }\n}\n", listen)
		})
		const host = "dp.bench.test"
		for _, workers := range dpWorkers() {
			hand := startBenchNginx(b, workers, nil, func(_, listen string) string { return handSameHeaders(listen, host, backendAddr) })
			all := []*benchNginx{hand, startDynamicNginx(b, host, backendAddr, workers, dpOptions{})}
			names := []string{"hand-written", "dynamic"}
			// DP_TRAFFIC=1: also the dynamic path with its per-site
			// counters (issue 16), and the variants below with them.
			traffic := os.Getenv("DP_TRAFFIC") == "1"
			if traffic {
				all = append(all, startDynamicNginx(b, host, backendAddr, workers, dpOptions{traffic: true}))
				names = append(names, "dynamic+counters")
			}
			// DP_VARIANTS="name=lua-file:template-file[:traffic-lua-file],...":
			// other versions of the dynamic path in the same run (the commit
			// before a change).
			for v := range strings.SplitSeq(os.Getenv("DP_VARIANTS"), ",") {
				name, files, ok := strings.Cut(v, "=")
				f := strings.Split(files, ":")
				if !ok || len(f) < 2 {
					continue
				}
				o := dpOptions{lua: f[0], tmpl: f[1], traffic: traffic}
				if len(f) > 2 {
					o.trafficLua = f[2]
				}
				all = append(all, startDynamicNginx(b, host, backendAddr, workers, o))
				names = append(names, name)
			}
			rps := make([][]float64, len(all))
			cpu := make([][]float64, len(all))
			for i := range rounds {
				// Rotate who goes first, so drift hits all alike.
				for k := range all {
					j := (i + k) % len(all)
					n := all[j]
					c0 := n.cpuTicks(b)
					r := runWrk(b, wrk, n.listen, host, 32, each, "")
					c1 := n.cpuTicks(b)
					if r.non2xx+r.sockErrors > 0 || r.reqs == 0 {
						b.Fatalf("%s: %d non-2xx, %d socket errors, %v requests:\n%s", names[j], r.non2xx, r.sockErrors, r.reqs, r.raw)
					}
					rps[j] = append(rps[j], r.rps)
					cpu[j] = append(cpu[j], float64(c1-c0)*tick.Seconds()/r.reqs)
				}
			}
			parts := []string{fmt.Sprintf("hand-written (same headers) %.0f req/s, %.1f µs CPU/req", mean(rps[0]), mean(cpu[0])*1e6)}
			for j := 1; j < len(all); j++ {
				parts = append(parts, fmt.Sprintf("%s %.0f req/s, %.1f µs CPU/req: req/s ratio %.3f (median of rounds %.3f), CPU/req ratio %.3f (median of rounds %.3f)",
					names[j], mean(rps[j]), mean(cpu[j])*1e6, mean(rps[j])/mean(rps[0]), medianRatio(rps[j], rps[0]), mean(cpu[j])/mean(cpu[0]), medianRatio(cpu[j], cpu[0])))
				b.ReportMetric(mean(rps[j])/mean(rps[0]), fmt.Sprintf("%s-rps-ratio-%dw", names[j], workers))
				b.ReportMetric(mean(cpu[j])/mean(cpu[0]), fmt.Sprintf("%s-cpu-ratio-%dw", names[j], workers))
			}
			b.Logf("DP: %d worker(s), wrk -c32, %d rounds x %s, order rotated: %s (goal >= 0.95 and <= 1.05)", workers, rounds, each, strings.Join(parts, " · "))
			for _, n := range all {
				n.stop()
			}
		}
	}
}

// dpWorkers is DP_WORKERS ("1", "2" or "1,2", the default).
func dpWorkers() []int {
	var ws []int
	for _, f := range strings.Split(os.Getenv("DP_WORKERS"), ",") {
		if n, err := strconv.Atoi(f); err == nil && n > 0 {
			ws = append(ws, n)
		}
	}
	if len(ws) == 0 {
		ws = []int{1, 2}
	}
	return ws
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// medianRatio is the median of a[i]/b[i].
func medianRatio(a, b []float64) float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = a[i] / b[i]
	}
	slices.Sort(r)
	return (r[(len(r)-1)/2] + r[len(r)/2]) / 2
}

// handSameHeaders is what an operator would write by hand for one site
// with the headers the dynamic path's location sends (render's "dynproxy"
// template block: forwarding headers, cleared client-address and
// hop-by-hop headers, websocket Upgrade only).
func handSameHeaders(listen, host, upstream string) string {
	return fmt.Sprintf(`map $http_upgrade $hand_upgrade {
    default        "";
    "~*^websocket$" websocket;
}
map $hand_upgrade $hand_connection {
    default   "";
    websocket upgrade;
}
map $scheme $hand_forwarded_ssl {
    https   on;
    default off;
}
upstream backend {
    server %s;
    keepalive 32;
}
server {
    listen %s default_server;
    server_name %s;
    location / {
        proxy_pass http://backend;
        proxy_connect_timeout 5s;
        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $host;
        proxy_set_header X-Forwarded-Port $server_port;
        proxy_set_header X-Forwarded-Ssl $hand_forwarded_ssl;
        proxy_set_header Forwarded "";
        proxy_set_header X-Forwarded-Prefix "";
        proxy_set_header X-Original-URL "";
        proxy_set_header X-Rewrite-URL "";
        proxy_set_header Upgrade $hand_upgrade;
        proxy_set_header Connection $hand_connection;
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
        proxy_set_header HTTP2-Settings "";
    }
}
`, upstream, listen, host)
}

// benchNginx is one nginx under measurement.
type benchNginx struct {
	listen string
	cmd    *exec.Cmd
	done   chan struct{}
	dir    string
}

// cpuTicks is utime+stime of the master and its workers.
func (n *benchNginx) cpuTicks(b *testing.B) int64 {
	b.Helper()
	pids, err := nginxProcs(supervise.PidFile(n.dir))
	if err != nil {
		b.Fatal(err)
	}
	t, err := cpuTicks(pids)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

func (n *benchNginx) stop() {
	n.cmd.Process.Signal(os.Interrupt)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		<-n.done
	}
}

// startBench runs nginx with conf(listen) as its http{} include, the
// supervised main config with worker_processes set to workers, and waits
// until it accepts connections. It returns the listen address (for the
// backend) or, through startBenchNginx, the process.
func startBench(b *testing.B, workers int, conf func(listen string) string) string {
	return startBenchNginx(b, workers, nil, func(dir, listen string) string { return conf(listen) }).listen
}

func startBenchNginx(b *testing.B, workers int, mods []string, conf func(dir, listen string) string) *benchNginx {
	b.Helper()
	dir, err := os.MkdirTemp("", "portico-dp-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	listen := addr(freePort(b))
	inc := filepath.Join(dir, "http.conf")
	if err := os.WriteFile(inc, []byte(conf(dir, listen)), 0o644); err != nil {
		b.Fatal(err)
	}
	mainPath := filepath.Join(dir, "nginx.conf")
	if err := (render.MainConf{Prefix: dir, Include: inc, Modules: mods}).Install(mainPath); err != nil {
		b.Fatal(err)
	}
	raw, err := os.ReadFile(mainPath)
	if err != nil {
		b.Fatal(err)
	}
	s := strings.Replace(string(raw), "worker_processes auto;", fmt.Sprintf("worker_processes %d;", workers), 1)
	if err := os.WriteFile(mainPath, []byte(s), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("nginx", "-p", dir, "-c", mainPath, "-g", "daemon off;")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	n := &benchNginx{listen: listen, cmd: cmd, done: make(chan struct{}), dir: dir}
	go func() { cmd.Wait(); close(n.done) }()
	b.Cleanup(n.stop)
	porticotest.Eventually(b, 10*time.Second, "nginx "+listen+" answers", func() error {
		code, _, err := get(listen, "x")
		if err == nil && code == 0 {
			err = fmt.Errorf("no answer")
		}
		return err
	})
	return n
}

// startDynamicNginx runs the dynamic path's rendered config with a table
// of one route, host -> upstream, loaded from the state file at start.
//
// dpOptions vary the dynamic path under measurement: lua, tmpl and
// trafficLua, when set, replace portico.lua, the template and
// portico_traffic.lua (another version's, for a before/after in one run);
// traffic turns the per-site counters on (and DP_ACCESS_LOG=1 Portico's
// access log, on every dynamic target).
type dpOptions struct {
	lua, tmpl, trafficLua string
	traffic               bool
}

func startDynamicNginx(b *testing.B, host, upstream string, workers int, o dpOptions) *benchNginx {
	b.Helper()
	mods := []string{"/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so"}
	n := startBenchNginx(b, workers, mods, func(dir, listen string) string {
		paths := render.NewDynamicPaths(dir)
		if err := os.MkdirAll(filepath.Dir(paths.ControlSocket), 0o700); err != nil {
			b.Fatal(err)
		}
		if err := dynamic.WriteLua(paths.LuaDir); err != nil {
			b.Fatal(err)
		}
		if o.traffic {
			if err := traffic.WriteLua(paths.LuaDir); err != nil {
				b.Fatal(err)
			}
		}
		if o.trafficLua != "" {
			lua, err := os.ReadFile(o.trafficLua)
			if err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(paths.LuaDir, traffic.LuaModule), lua, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		var tmpl string
		if o.lua != "" {
			lua, err := os.ReadFile(o.lua)
			if err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(paths.LuaDir, dynamic.LuaModule), lua, 0o644); err != nil {
				b.Fatal(err)
			}
			t, err := os.ReadFile(o.tmpl)
			if err != nil {
				b.Fatal(err)
			}
			tmpl = string(t)
		}
		if err := dynamic.Fallback(paths.FallbackCert, paths.FallbackKey); err != nil {
			b.Fatal(err)
		}
		body, _, err := dynamic.Table{Routes: []dynamic.Route{{Host: host, Scheme: "http", Peers: []string{upstream}}}}.Encode()
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(paths.StateFile, body, 0o600); err != nil {
			b.Fatal(err)
		}
		st := render.Settings{HTTPAddrs: []string{listen}, Dynamic: &paths, Template: tmpl}
		if o.traffic {
			st.Traffic = &render.TrafficPaths{}
		}
		// DP_ACCESS_LOG=1: Portico's access log, to a file beside the
		// config.
		if os.Getenv("DP_ACCESS_LOG") == "1" {
			st.AccessLog = &render.AccessLog{Path: filepath.Join(dir, "access.log")}
		}
		conf, err := render.Render(render.Input{Settings: st})
		if err != nil {
			b.Fatal(err)
		}
		return string(conf)
	})
	porticotest.Eventually(b, 10*time.Second, host+" routed", func() error {
		code, _, err := get(n.listen, host)
		if err == nil && code != 200 {
			err = fmt.Errorf("%s: %d", host, code)
		}
		return err
	})
	return n
}
