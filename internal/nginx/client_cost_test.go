package nginx

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/nginx/supervise"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// startShellNginx starts nginx on conf (the rendered include) with the
// main config mc, under a 1024 soft limit of open files as systemd and
// most shells leave it, and waits until host answers 200 at httpAddr.
func startShellNginx(t *testing.T, conf []byte, mc render.MainConf, httpAddr, host string) {
	t.Helper()
	dir := mc.Prefix
	inc, mainPath := filepath.Join(dir, "portico.conf"), filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(inc, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	mc.Include = inc
	if err := mc.Install(mainPath); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "logs", "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	cmd := exec.Command("/bin/sh", "-c", `ulimit -Sn 1024 && exec "$0" -p "$1" -c "$2" -g 'daemon off;'`, nginxBin, dir, mainPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		out, _ := os.ReadFile(logf.Name())
		if t.Failed() {
			t.Logf("nginx:\n%s", out)
		} else if n := strings.Count(string(out), "\n"); n > 0 {
			t.Logf("nginx logged %d lines; the first: %.300s", n, out)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for err := probe(httpAddr, host, "127.0.0.1", 2*time.Second); err != nil; err = probe(httpAddr, host, "127.0.0.1", 2*time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not serve: %v", err)
		}
		<-time.After(25 * time.Millisecond) // a poll interval
	}
}

// needOpenFiles fails the test unless this process may open n files and
// nginx may raise its own limit to what its main config asks.
func needOpenFiles(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < n || lim.Max < 2*render.WorkerConnections {
		t.Fatalf("open-file limit %d (hard %d): the test needs %d, and nginx a hard limit of %d", lim.Cur, lim.Max, n, 2*render.WorkerConnections)
	}
}

// oneRouteConf is the static path's config of one route, host, to an echo
// server answering "A", on httpAddr.
func oneRouteConf(t *testing.T, host, httpAddr string) []byte {
	t.Helper()
	conf, err := render.Render(render.Input{Routes: []routing.Route{route(host, "127.0.0.1:"+strconv.Itoa(echoServer(t, "A")))},
		Settings: render.Settings{HTTPAddrs: []string{httpAddr}}})
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

// probe is one normal request from the loopback address from: nil when
// it is answered 200.
func probe(httpAddr, host, from string, timeout time.Duration) error {
	req, _ := http.NewRequest("GET", "http://"+httpAddr+"/", nil)
	req.Host = host
	tr := &http.Transport{DisableKeepAlives: true, DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Timeout: timeout, Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

// TestOneAddressCannotStarveOthers is issue 14's attack on the real nginx
// with the documented room: one address (127.0.0.2) holds 8,400
// connections that each sent a request line and a Host line and then
// wait, reopening every one nginx closes, for 12 s. Another address
// (127.0.0.3) asks for a page every 50 ms meanwhile; every one of its
// requests is served. limit_conn cannot help here (nginx counts a
// connection only once its header is complete): what does is the room
// (worker_connections) and the header timeout, which frees the room
// faster than one address can refill it at this size.
func TestOneAddressCannotStarveOthers(t *testing.T) {
	const hold = 8400
	const attackFor = 12 * time.Second // more than two header timeouts
	needOpenFiles(t, hold+1000)
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	conf := oneRouteConf(t, "victim.test", httpAddr)
	// The header timeout is raised from its default (5 s) so that this
	// test's attacker, on a shared machine, surely holds all its
	// connections at once: what is tested is the room. The default only
	// makes the attacker's work harder (it must reopen 8,400 connections
	// every 5 s; TestIdleHalfSentRequestsDoNotStarve checks the timeout).
	startShellNginx(t, conf, render.MainConf{Prefix: dir, Client: render.ClientLimits{HeaderTimeout: 30 * time.Second}}, httpAddr, "victim.test")

	var mu sync.Mutex
	var conns []net.Conn
	closeAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
		conns = nil
	}
	t.Cleanup(closeAll)
	var held, opened, refused atomic.Int64
	var maxHeld atomic.Int64
	var dialErr atomic.Value
	var stopNs atomic.Int64
	stopNs.Store(time.Now().Add(time.Minute).UnixNano()) // set when the attack is full
	stopAt := func() time.Time { return time.Unix(0, stopNs.Load()) }
	var wg sync.WaitGroup
	const workers = 16
	for range workers {
		wg.Go(func() {
			free := make(chan struct{}, hold/workers)
			for range hold / workers {
				free <- struct{}{}
			}
			for time.Now().Before(stopAt()) {
				select {
				case <-free:
				case <-time.After(100 * time.Millisecond):
					continue
				}
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
				c, err := d.Dial("tcp", httpAddr)
				if err != nil {
					if refused.Add(1) == 1 {
						dialErr.Store(err.Error())
					}
					free <- struct{}{}
					continue
				}
				if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: victim.test\r\n"); err != nil {
					c.Close()
					refused.Add(1)
					free <- struct{}{}
					continue
				}
				opened.Add(1)
				if n := held.Add(1); n > maxHeld.Load() {
					maxHeld.Store(n)
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				go func() {
					io.Copy(io.Discard, c) // until nginx closes it, or the test does
					c.Close()
					held.Add(-1)
					free <- struct{}{}
				}()
			}
		})
	}
	// The attack is full: the other client, from another address, while
	// the attacker keeps reopening what nginx closes.
	fillDeadline := time.Now().Add(40 * time.Second)
	for held.Load() < hold {
		if time.Now().After(fillDeadline) {
			t.Fatalf("the attacker opened only %d of %d connections in 40 s", held.Load(), hold)
		}
		<-time.After(20 * time.Millisecond) // a poll interval
	}
	stopNs.Store(time.Now().Add(attackFor).UnixNano())
	var ok, failed int
	var firstErr error
	minHeld := int64(hold)
	for time.Now().Before(stopAt()) {
		minHeld = min(minHeld, held.Load())
		if err := probe(httpAddr, "victim.test", "127.0.0.3", 2*time.Second); err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
		} else {
			ok++
		}
		<-time.After(50 * time.Millisecond) // the other client's pace
	}
	wg.Wait()
	closeAll()
	t.Logf("one address: %d connections opened (%d held when the other client began, at least %d while it asked, at most %d; %d dials failed, the first: %v); the other address, in %v: %d requests served, %d failed",
		opened.Load(), hold, minHeld, maxHeld.Load(), refused.Load(), dialErr.Load(), attackFor, ok, failed)
	if failed > 0 {
		t.Errorf("%d of %d requests of another address failed during the attack; the first: %v", failed, ok+failed, firstErr)
	}
}

// longHost is a name of n bytes (n >= len(suffix)+2) made of one-letter
// labels in front of suffix: the most dots a name of that length can have.
func longHost(n int, suffix string) string {
	l := n - len(suffix) // the labels in front of suffix and their dots
	p := strings.Repeat("a.", l/2) + "a"
	if l%2 == 0 {
		p = "bb" + p[3:]
	}
	return p + suffix
}

// The dynamic lookup keeps nginx's server_name order (exact, longest
// wildcard, default) while trying only the wildcard depths the table
// holds, and refuses a Host or SNI name longer than a DNS name (253 bytes)
// before any lookup: 400 for a Host, a rejected handshake for an SNI name.
func TestDynamicLookupBounded(t *testing.T) {
	h := startStage(t, true, nil)
	e, w2, w4 := echoServer(t, "E"), echoServer(t, "W2"), echoServer(t, "W4")
	h.putContainer("e", e, map[string]string{routing.LabelVhost: "a.deep.test"})
	h.putContainer("w2", w2, map[string]string{routing.LabelVhost: "*.deep.test", routing.LabelHTTPS: routing.HTTPSBoth})
	h.putContainer("w4", w4, map[string]string{routing.LabelVhost: "*.x.y.deep.test"})
	h.want("q.x.y.deep.test", 200, "W4 ")
	h.want("a.deep.test", 200, "E ")
	h.want("x.y.deep.test", 200, "W2 ") // depth 4 needs a label in front
	h.want("deep.test", 404, "")
	h.want("Q.X.Y.DEEP.TEST", 200, "W4 ")
	h.want(longHost(253, ".x.y.deep.test"), 200, "W4 ")
	h.want(longHost(253, ".z.deep.test"), 200, "W2 ")
	h.want(longHost(254, ".x.y.deep.test"), 400, "")
	h.want(longHost(8000, ".deep.test"), 400, "")
	// The depth goes with its last route.
	h.deleteKey(h.keys.Container("node1", "w4"))
	h.want("q.x.y.deep.test", 200, "W2 ")

	bu := selfSigned(t, 4001, "*.deep.test")
	if _, err := store.PutJSON(context.Background(), h.etcd.Client, h.keys.CertBundle(bu.Primary), bu); err != nil {
		t.Fatal(err)
	}
	hs := func(sni string) error {
		c, err := tls.Dial("tcp", h.https, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err == nil {
			c.Close()
		}
		return err
	}
	ok253 := longHost(253, ".z.deep.test")
	h.eventually("a 253-byte SNI name under *.deep.test", func() error { return hs(ok253) })
	if err := hs(longHost(254, ".z.deep.test")); err == nil {
		t.Errorf("a 254-byte SNI name got a handshake")
	}
}

// BenchmarkDynamicHostCPU (issue 14): nginx worker CPU (utime+stime of the
// master and workers, /proc/<pid>/stat) per request on the dynamic path,
// for a normal Host, a 253-byte Host of one-letter labels (126 dots) and
// an 8 KB Host of 4,000 dots, over HTTP/1.1 keep-alive. The table holds
// 200 exact routes and 3 wildcards. The long names are unknown (404, after
// the lookup) or refused (400, before it). Goal: each within 2x of the
// normal Host, or refused.
//
//	go test -run '^$' -bench DynamicHostCPU -benchtime 1x ./internal/nginx/
func BenchmarkDynamicHostCPU(b *testing.B) {
	for b.Loop() {
		dynamicHostCPU(b)
	}
}

func dynamicHostCPU(b *testing.B) {
	h := startStage(b, false, nil)
	e := echoServer(b, "E")
	for i := range 200 {
		h.putContainer(fmt.Sprintf("e%d", i), e, map[string]string{routing.LabelVhost: fmt.Sprintf("s%d.bench.test", i)})
	}
	for i, w := range []string{"*.w.bench.test", "*.a.b.c.bench.test", "*.deep.a.b.c.d.bench.test"} {
		h.putContainer(fmt.Sprintf("w%d", i), e, map[string]string{routing.LabelVhost: w})
	}
	h.want("s199.bench.test", 200, "")
	h.want("q.deep.a.b.c.d.bench.test", 200, "")
	// Fewer 8 KB requests: before issue 14 each cost about 90 ms.
	cases := []struct {
		name, host string
		n          int
	}{
		{"normal", "s7.bench.test", 2000},
		{"253-byte", longHost(253, ".unknown.test"), 2000},
		{"8KB", longHost(8000, ".unknown.test"), 200},
	}
	cpu := map[string]time.Duration{}
	codes := map[string]int{}
	const rounds = 3
	for range rounds {
		for _, c := range cases {
			d, code := workerCPU(b, h, c.host, c.n)
			cpu[c.name] += d / rounds
			codes[c.name] = code
		}
	}
	var out []string
	for _, c := range cases {
		out = append(out, fmt.Sprintf("%s (%d) %s = %.2fx", c.name, codes[c.name], cpu[c.name].Round(time.Microsecond), cpu[c.name].Seconds()/cpu["normal"].Seconds()))
		b.ReportMetric(cpu[c.name].Seconds()*1e6, "us-cpu/"+c.name)
	}
	b.Logf("I14 Host cost: nginx CPU per request, 2,000 keep-alive requests (8 KB: 200) x %d rounds each: %s", rounds, strings.Join(out, ", "))
}

// workerCPU sends n requests for host on one keep-alive connection and
// (a new one after each close) and returns nginx's CPU per request and the
// last status.
func workerCPU(b testing.TB, h *harness, host string, n int) (time.Duration, int) {
	pids := nginxPids(b, h.dir)
	c0 := cpuTicksOf(b, pids)
	c, err := net.Dial("tcp", h.http)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufioReader(c)
	req := "GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
	code, reconnects := 0, 0
	for i := 0; i < n; i++ {
		_, err := io.WriteString(c, req)
		var resp *http.Response
		if err == nil {
			resp, err = http.ReadResponse(br, nil)
		}
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
		}
		if err != nil || resp.Close {
			// nginx closed the connection (after a 400): reconnect.
			if reconnects++; reconnects > n+10 {
				b.Fatal(err)
			}
			c.Close()
			if c, err = net.Dial("tcp", h.http); err != nil {
				b.Fatal(err)
			}
			br = bufioReader(c)
		}
	}
	return time.Duration(cpuTicksOf(b, pids)-c0) * 10 * time.Millisecond / time.Duration(n), code
}

// nginxPids is the supervised nginx's master (its pid file under dir) and
// its children.
func nginxPids(t testing.TB, dir string) []int {
	t.Helper()
	raw, err := os.ReadFile(supervise.PidFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	master, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	pids := []int{master}
	kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", master, master))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range strings.Fields(string(kids)) {
		n, _ := strconv.Atoi(k)
		pids = append(pids, n)
	}
	return pids
}

// cpuTicksOf sums utime+stime (clock ticks of 10 ms) of pids.
func cpuTicksOf(t testing.TB, pids []int) int64 {
	t.Helper()
	var sum int64
	for _, p := range pids {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			t.Fatal(err)
		}
		s := string(st)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		for _, x := range f[11:13] {
			n, err := strconv.ParseInt(x, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			sum += n
		}
	}
	return sum
}
