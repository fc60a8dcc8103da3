package nginx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// harness is one stage with real etcd and a supervised real nginx.
type harness struct {
	t         testing.TB
	etcd      *storetest.Etcd
	keys      store.Keys
	stage     *Stage
	http      string // nginx's HTTP address
	https     string // nginx's HTTPS address, "" without TLS
	dir       string
	cancelRun context.CancelFunc
	log       *testWriter
}

func freeAddr(t testing.TB) string {
	t.Helper()
	return porticotest.Addr(porticotest.FreePort(t))
}

func startStage(t testing.TB, withTLS bool, mutate func(*Config)) *harness {
	t.Helper()
	return startStageWith(t, withTLS, mutate, nil)
}

// startStageWith is startStage calling early, when set, as soon as Run
// has begun: before nginx is up.
func startStageWith(t testing.TB, withTLS bool, mutate func(*Config), early func(*harness)) *harness {
	t.Helper()
	h := &harness{t: t, etcd: storetest.Start(t), keys: store.NewKeys("/t"), dir: t.TempDir(), http: freeAddr(t)}
	cfg := Config{Keys: h.keys, Dir: h.dir, HTTPAddrs: []string{h.http}, NginxBinary: nginxBin, Instance: "test", Debounce: 20 * time.Millisecond,
		Routing: routing.Options{LoopbackUpstreams: true}} // the upstreams are test servers on 127.0.0.1
	if withTLS {
		h.https = freeAddr(t)
		cfg.HTTPSAddrs = []string{h.https}
	}
	// The dynamic path is what `portico run` uses; tests of the static
	// path (external mode, include dirs, templates) turn it off.
	cfg.Dynamic = true
	if mutate != nil {
		mutate(&cfg)
	}
	h.http = cfg.HTTPAddrs[0]
	w := &testWriter{t: t}
	h.log = w
	t.Cleanup(w.close) // registered first, so it runs after Run returned
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	st, err := New(cfg, h.etcd.Client, log)
	if err != nil {
		t.Fatal(err)
	}
	h.stage = st
	ctx, cancel := context.WithCancel(context.Background())
	h.cancelRun = cancel
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return")
		}
	})
	if early != nil {
		early(h)
	}
	h.eventually("nginx up", func() error {
		_, _, err := h.get("nobody.test")
		return err
	})
	return h
}

// testWriter logs through t until the test ends; nginx's log copier may
// outlive the test by a moment.
type testWriter struct {
	t      testing.TB
	mu     sync.Mutex
	closed bool
	lines  []string
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = append(w.lines, string(b))
	if !w.closed {
		w.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

func (h *harness) eventually(what string, f func() error) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		// A poll interval, not a synchronisation sleep.
		<-time.After(25 * time.Millisecond)
	}
}

// upstream is a real HTTP server that names itself and echoes the request.
func echoServer(t testing.TB, name string) (port int) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s host=%s proto=%s xfh=%s", name, r.Host, r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"))
	}))
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ = strconv.Atoi(p)
	return port
}

func (h *harness) putContainer(id string, port int, labels map[string]string) {
	h.t.Helper()
	l := map[string]string{routing.LabelPort: strconv.Itoa(port)}
	for k, v := range labels {
		l[k] = v
	}
	c := store.Container{ID: id, Name: "c-" + id, Host: "node1", State: "running", Labels: l,
		Networks: map[string]store.Network{"bridge": {IPv4: "127.0.0.1"}}}
	if _, err := store.PutJSON(context.Background(), h.etcd.Client, h.keys.Container("node1", id), c); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) deleteKey(key string) {
	h.t.Helper()
	if _, err := h.etcd.Client.Delete(context.Background(), key); err != nil {
		h.t.Fatal(err)
	}
}

var noRedirect = &http.Client{
	Timeout:       5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     &http.Transport{DisableKeepAlives: true},
}

// get asks nginx's HTTP address for / with the given Host.
func (h *harness) get(host string) (int, string, error) {
	req, _ := http.NewRequest("GET", "http://"+h.http+"/", nil)
	req.Host = host
	resp, err := noRedirect.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 3 {
		return resp.StatusCode, resp.Header.Get("Location"), nil
	}
	return resp.StatusCode, string(b), nil
}

// want waits until host is answered code with bodyHas, then until the
// stage is done with the apply that made it so (new nginx workers answer
// before the old ones stop accepting), and asks once more.
func (h *harness) want(host string, code int, bodyHas string) {
	h.t.Helper()
	check := func() error {
		c, b, err := h.get(host)
		if err != nil {
			return err
		}
		if c != code || !strings.Contains(b, bodyHas) {
			return fmt.Errorf("got %d %q", c, b)
		}
		return nil
	}
	what := fmt.Sprintf("%s -> %d %q", host, code, bodyHas)
	h.eventually(what, check)
	h.settled()
	if err := check(); err != nil {
		h.t.Fatalf("%s, then after the apply finished: %v", what, err)
	}
}

// settled waits until the stage is not in the middle of a render or apply.
func (h *harness) settled() {
	h.t.Helper()
	h.eventually("the stage's apply finished", func() error {
		if h.stage.inSync.Load() {
			return errors.New("applying")
		}
		return nil
	})
}

func (h *harness) status() store.NginxStatus {
	h.t.Helper()
	resp, err := h.etcd.Client.Get(context.Background(), h.keys.NginxStatus("test"))
	if err != nil {
		h.t.Fatal(err)
	}
	var st store.NginxStatus
	if len(resp.Kvs) == 1 {
		if err := store.Decode("status", resp.Kvs[0].Value, &st); err != nil {
			h.t.Fatal(err)
		}
	}
	return st
}

func TestStageServesRoutes(t *testing.T) {
	h := startStage(t, false, nil)
	h.want("unknown.test", 404, "")

	a := echoServer(t, "A")
	h.putContainer("a1", a, map[string]string{routing.LabelVhost: "app.test"})
	h.want("app.test", 200, "A host=app.test proto=http xfh=app.test")
	h.want("unknown.test", 404, "")

	// A second replica: both receive traffic.
	b := echoServer(t, "B")
	h.putContainer("b1", b, map[string]string{routing.LabelVhost: "app.test"})
	seen := map[string]bool{}
	h.eventually("both replicas", func() error {
		_, body, err := h.get("app.test")
		if err != nil {
			return err
		}
		seen[strings.Fields(body)[0]] = true
		if !seen["A"] || !seen["B"] {
			return fmt.Errorf("seen %v", seen)
		}
		return nil
	})

	// A change that does not alter the config does not reload nginx.
	reloads, syncs := h.stage.Reloads(), h.stage.syncs.Load()
	h.putContainer("nolabel", a, nil)
	h.eventually("a render of the unchanged config", func() error {
		if h.stage.syncs.Load() == syncs {
			return errors.New("no render yet")
		}
		return nil
	})
	if got := h.stage.Reloads(); got != reloads {
		t.Errorf("reloads %d -> %d without a config change", reloads, got)
	}
	if st := h.status(); st.Routes != 1 || st.Error != "" || st.Reloads != reloads {
		t.Errorf("status = %+v", st)
	}

	// Records deleted: the route is gone.
	h.deleteKey(h.keys.Container("node1", "a1"))
	h.deleteKey(h.keys.Container("node1", "b1"))
	h.want("app.test", 404, "")
}

func TestStageKeepsLastGoodConfig(t *testing.T) {
	// The override renders a broken config whenever broken.test is routed.
	tmpl := filepath.Join(t.TempDir(), "t.tmpl")
	text := render.DefaultTemplate() + `{{range .Vhosts}}{{if eq .Host "broken.test"}}this is not nginx{{end}}{{end}}`
	if err := os.WriteFile(tmpl, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	h := startStage(t, false, func(c *Config) { c.TemplatePath, c.Dynamic = tmpl, false })
	a := echoServer(t, "A")
	h.putContainer("a1", a, map[string]string{routing.LabelVhost: "app.test"})
	h.want("app.test", 200, "A host=app.test")

	h.putContainer("x1", a, map[string]string{routing.LabelVhost: "broken.test"})
	h.eventually("status names the failed routes", func() error {
		st := h.status()
		if !strings.Contains(st.Error, "nginx -t") || strings.Join(st.ErrorRoutes, ",") != "broken.test" {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	h.want("app.test", 200, "A host=app.test")
	h.want("broken.test", 404, "")

	// A later good change applies.
	h.deleteKey(h.keys.Container("node1", "x1"))
	h.putContainer("c1", a, map[string]string{routing.LabelVhost: "other.test"})
	h.want("other.test", 200, "A host=other.test")
	h.eventually("status after recovery", func() error {
		if st := h.status(); st.Error != "" || st.Routes != 2 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
}

func TestStageRestartsKilledNginx(t *testing.T) {
	h := startStage(t, false, nil)
	a := echoServer(t, "A")
	h.putContainer("a1", a, map[string]string{routing.LabelVhost: "app.test"})
	h.want("app.test", 200, "A host=app.test")

	old := h.stage.sup.Pid()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	h.eventually("a new master", func() error {
		if p := h.stage.sup.Pid(); p == 0 || p == old {
			return fmt.Errorf("pid %d", p)
		}
		return nil
	})
	h.want("app.test", 200, "A host=app.test")
}

func TestStageTLS(t *testing.T) {
	h := startStage(t, true, nil)
	a := echoServer(t, "A")
	h.putContainer("a1", a, map[string]string{routing.LabelVhost: "secure.test", routing.LabelHSTS: "true", routing.LabelHTTPS: routing.HTTPSRedirect})
	h.putContainer("p1", a, map[string]string{routing.LabelVhost: "plain.test"})
	h.want("secure.test", 200, "A host=secure.test") // no certificate yet: plain HTTP

	putBundle := func(serial int64) {
		b := selfSigned(t, serial, "secure.test")
		if _, err := store.PutJSON(context.Background(), h.etcd.Client, h.keys.CertBundle(b.Primary), b); err != nil {
			t.Fatal(err)
		}
	}
	putBundle(1001)
	_, port, _ := net.SplitHostPort(h.https)
	h.want("secure.test", 301, "https://secure.test:"+port+"/")
	h.want("plain.test", 200, "A host=plain.test")

	serial := func(sni string) (int64, *http.Response, error) {
		conn, err := tls.Dial("tcp", h.https, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err != nil {
			return 0, nil, err
		}
		defer conn.Close()
		s := conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
		req, _ := http.NewRequest("GET", "https://"+sni+"/", nil)
		if err := req.Write(conn); err != nil {
			return 0, nil, err
		}
		resp, err := http.ReadResponse(bufioReader(conn), req)
		if err != nil {
			return 0, nil, err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Header.Set("X-Body", string(b))
		return s, resp, nil
	}
	h.eventually("HTTPS with serial 1001", func() error {
		s, resp, err := serial("secure.test")
		if err != nil {
			return err
		}
		if s != 1001 || !strings.Contains(resp.Header.Get("X-Body"), "A host=secure.test proto=https") {
			return fmt.Errorf("serial %d body %q", s, resp.Header.Get("X-Body"))
		}
		if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
			return fmt.Errorf("HSTS %q", got)
		}
		return nil
	})
	if _, _, err := serial("unknown.test"); err == nil {
		t.Error("unknown SNI: handshake succeeded")
	}

	// A chain longer than the 4 KB nginx allows in one string is split
	// across variables and still served whole; https=both with HSTS sends
	// the header on HTTPS only.
	h.putContainer("l1", a, map[string]string{routing.LabelVhost: "long.test", routing.LabelHSTS: "600", routing.LabelHTTPS: routing.HTTPSBoth})
	long := selfSigned(t, 2001, "long.test")
	for i := range 8 {
		long.ChainPEM += selfSigned(t, int64(3000+i), fmt.Sprintf("intermediate%d.test", i)).CertPEM
	}
	if len(long.FullChain()) <= 4096 {
		t.Fatalf("chain of %d bytes is not long", len(long.FullChain()))
	}
	if _, err := store.PutJSON(context.Background(), h.etcd.Client, h.keys.CertBundle(long.Primary), long); err != nil {
		t.Fatal(err)
	}
	h.eventually("long chain over HTTPS", func() error {
		conn, err := tls.Dial("tcp", h.https, &tls.Config{ServerName: "long.test", InsecureSkipVerify: true})
		if err != nil {
			return err
		}
		defer conn.Close()
		if pc := conn.ConnectionState().PeerCertificates; len(pc) != 9 || pc[0].SerialNumber.Int64() != 2001 {
			return fmt.Errorf("%d certificates, first serial %d", len(pc), pc[0].SerialNumber)
		}
		_, resp, err := serial("long.test")
		if err != nil {
			return err
		}
		if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=600" {
			return fmt.Errorf("HSTS over HTTPS %q", got)
		}
		return nil
	})
	req, _ := http.NewRequest("GET", "http://"+h.http+"/", nil)
	req.Host = "long.test"
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("long.test over HTTP: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	if _, _, err := serial("plain.test"); err == nil {
		t.Error("vhost without a certificate: handshake succeeded")
	}

	reloads := h.stage.Reloads()
	putBundle(1002) // renewal
	h.eventually("renewed serial 1002", func() error {
		s, _, err := serial("secure.test")
		if err != nil {
			return err
		}
		if s != 1002 {
			return fmt.Errorf("serial %d", s)
		}
		return nil
	})
	if h.stage.Reloads() != reloads {
		t.Errorf("renewal reloaded nginx: %d -> %d (the dynamic path swaps certificates without one)", reloads, h.stage.Reloads())
	}
	fi, err := os.Stat(filepath.Join(h.dir, "certs", "secure.test", "privkey.pem"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("privkey.pem: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(h.stage.applier.ConfPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("rendered config (holds the keys): %v %v", fi.Mode(), err)
	}
}

// A first start with records arriving while nginx starts (the reporter
// writes them as `portico run` comes up) logs no error: a push that finds
// no control socket yet is retried once nginx is up, and the route goes
// live.
func TestDynamicFirstStartLogsNoError(t *testing.T) {
	port := echoServer(t, "A")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	end := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(end)
	// portico run's debounce on the dynamic path: pushes follow changes at once.
	h := startStageWith(t, false, func(c *Config) { c.Debounce = 2 * time.Millisecond }, func(h *harness) {
		// Changes keep coming while nginx starts, as from a reporter.
		wg.Go(func() {
			for i := 0; ; i++ {
				c := store.Container{ID: "a1", Name: "c-a1", Host: "node1", State: "running",
					Labels:   map[string]string{routing.LabelPort: strconv.Itoa(port), routing.LabelVhost: "app.test", "n": strconv.Itoa(i)},
					Networks: map[string]store.Network{"bridge": {IPv4: "127.0.0.1"}}}
				if _, err := store.PutJSON(context.Background(), h.etcd.Client, h.keys.Container("node1", "a1"), c); err != nil {
					t.Errorf("put: %v", err)
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
			}
		})
	})
	h.want("app.test", 200, "A host=app.test")
	end()
	h.log.mu.Lock()
	defer h.log.mu.Unlock()
	for _, l := range h.log.lines {
		if strings.Contains(l, "level=ERROR") {
			t.Errorf("error logged on a first start: %s", strings.TrimSpace(l))
		}
	}
	if st := h.status(); st.Error != "" {
		t.Errorf("status error %q", st.Error)
	}
}

// TestStageReloadWholeOnceApplied: on the static path, once the stage
// reports a route applied (status key), every new connection gets it; no
// old worker still answers from the config before (a reload waits for the
// old workers to stop accepting, not only for the new ones).
func TestStageReloadWholeOnceApplied(t *testing.T) {
	h := startStage(t, false, func(c *Config) { c.Dynamic = false })
	a := echoServer(t, "A")
	for i := range 5 {
		host := fmt.Sprintf("r%d.example.org", i)
		h.putContainer(fmt.Sprintf("c%d", i), a, map[string]string{routing.LabelVhost: host})
		h.eventually(host+" applied", func() error {
			if st := h.status(); st.AppliedRoutes[host] == "" {
				return fmt.Errorf("not applied yet: %d routes", st.Routes)
			}
			return nil
		})
		for j := range 20 {
			if code, body, err := h.get(host); err != nil || code != 200 || !strings.Contains(body, "A host="+host) {
				t.Fatalf("reload %d, request %d after the status said applied: %d %q %v", i, j, code, body, err)
			}
		}
	}
}
