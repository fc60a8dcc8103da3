package ui_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/status"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
	"github.com/portico/portico/internal/testenv/porticotest"
	"github.com/portico/portico/internal/traffic"
	"github.com/portico/portico/internal/ui"
)

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr, token string
		wantErr     string
	}{
		{"127.0.0.1:8099", "", ""},
		{"localhost:8099", "", ""},
		{"[::1]:8099", "", ""},
		{"127.0.0.2:0", "", ""},
		{"0.0.0.0:8099", "", "not loopback"},
		{":8099", "", "not loopback"},
		{"[::]:8099", "", "not loopback"},
		{"192.0.2.10:8099", "", "not loopback"},
		{"ui.example:8099", "", "not loopback"},
		{"0.0.0.0:8099", "s3cret", ""},
		{"8099", "", "missing port"},
	} {
		err := ui.CheckAddr(tc.addr, tc.token)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("CheckAddr(%q, token=%t): %v", tc.addr, tc.token != "", err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("CheckAddr(%q, token=%t) = %v, want error containing %q", tc.addr, tc.token != "", err, tc.wantErr)
		}
	}
}

// serve starts a page server on a free loopback port against a real
// embedded etcd and returns its base URL.
func serve(t *testing.T, cfg ui.Config) (string, *ui.Server, *storetest.Etcd) {
	t.Helper()
	e := storetest.Start(t)
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	cfg.Keys = store.NewKeys(store.DefaultPrefix)
	cfg.Debounce = 20 * time.Millisecond
	s, err := ui.New(cfg, e.Client)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + s.Addr(), s, e
}

func TestNonLoopbackWithoutTokenRefusesToStart(t *testing.T) {
	t.Parallel()
	e := storetest.Start(t)
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		s, err := ui.New(ui.Config{Addr: addr, Keys: store.NewKeys("/p")}, e.Client)
		if err == nil {
			t.Errorf("ui.New(%q) without a token started, listening on %s", addr, s.Addr())
			continue
		}
		if !strings.Contains(err.Error(), "--ui-addr") || !strings.Contains(err.Error(), addr) {
			t.Errorf("error does not name the flag and address: %v", err)
		}
	}
	// With a token it starts.
	s, err := ui.New(ui.Config{Addr: "0.0.0.0:0", Token: "t0ken", Keys: store.NewKeys("/p")}, e.Client)
	if err != nil {
		t.Fatalf("with a token: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Run(ctx) // closes the listener
}

func noRedirect() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t *testing.T, c *http.Client, url string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestTokenRule(t *testing.T) {
	t.Parallel()
	const token = "a token; with \"quotes\" and spaces"
	base, _, _ := serve(t, ui.Config{Token: token})
	c := noRedirect()

	for _, tc := range []struct {
		name string
		path string
		hdr  map[string]string
		want int
	}{
		{"no token", "/", nil, 401},
		{"no token, api", "/api/status", nil, 401},
		{"no token, events", "/events", nil, 401},
		{"no token, script", "/app.js", nil, 401},
		{"wrong bearer", "/", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"wrong bearer with right query", "/?token=" + urlq(token), map[string]string{"Authorization": "Bearer nope"}, 401},
		{"prefix of the token", "/", map[string]string{"Authorization": "Bearer " + token[:5]}, 401},
		{"basic auth", "/", map[string]string{"Authorization": "Basic " + token}, 401},
		{"wrong query", "/?token=nope", nil, 401},
		{"wrong cookie", "/", map[string]string{"Cookie": ui.CookieName + "=nope"}, 401},
		{"right bearer", "/", map[string]string{"Authorization": "Bearer " + token}, 200},
		{"right bearer, api", "/api/status", map[string]string{"Authorization": "Bearer " + token}, 200},
		{"right query redirects", "/?token=" + urlq(token), nil, 303},
	} {
		resp := do(t, c, base+tc.path, tc.hdr)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: GET %s = %d, want %d", tc.name, tc.path, resp.StatusCode, tc.want)
		}
		if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
	}

	// The first load with ?token= sets an HttpOnly SameSite=Strict cookie
	// and redirects to the address without the token; the cookie then
	// opens every path.
	resp := do(t, c, base+"/?token="+urlq(token)+"&x=1", nil)
	if loc := resp.Header.Get("Location"); strings.Contains(loc, "token") || loc != "/?x=1" {
		t.Errorf("redirect to %q, want /?x=1 (no token)", loc)
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == ui.CookieName {
			cookie = ck
		}
	}
	if cookie == nil {
		t.Fatalf("no %s cookie in %v", ui.CookieName, resp.Header["Set-Cookie"])
	}
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Errorf("cookie %s: want HttpOnly and SameSite=Strict", resp.Header.Get("Set-Cookie"))
	}
	if strings.Contains(cookie.Value, "token") || cookie.Value == token {
		t.Errorf("cookie holds the token itself: %q", cookie.Value)
	}
	for _, p := range []string{"/", "/app.js", "/app.css", "/api/status"} {
		if r := do(t, c, base+p, map[string]string{"Cookie": ui.CookieName + "=" + cookie.Value}); r.StatusCode != 200 {
			t.Errorf("GET %s with the cookie = %d, want 200", p, r.StatusCode)
		}
	}
}

func urlq(s string) string {
	return strings.NewReplacer("%", "%25", " ", "%20", ";", "%3B", "\"", "%22", "&", "%26", "+", "%2B").Replace(s)
}

func TestHeadersAndLoopbackHost(t *testing.T) {
	t.Parallel()
	base, _, _ := serve(t, ui.Config{})
	c := noRedirect()
	resp := do(t, c, base+"/", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET / = %d", resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("no nosniff")
	}
	// Without a token, a request naming another host (DNS rebinding) is
	// refused; localhost passes.
	if r := do(t, c, base+"/api/status", map[string]string{"Host": "evil.example:80"}); r.StatusCode != 403 {
		t.Errorf("Host evil.example: %d, want 403", r.StatusCode)
	}
	if r := do(t, c, base+"/api/status", map[string]string{"Host": "localhost"}); r.StatusCode != 200 {
		t.Errorf("Host localhost: %d, want 200", r.StatusCode)
	}
	if r := do(t, c, base+"/nope", nil); r.StatusCode != 404 {
		t.Errorf("GET /nope = %d, want 404", r.StatusCode)
	}
}

// stream is one open event stream; a goroutine reads its snapshots.
type stream struct {
	resp  *http.Response
	snaps chan ui.Snapshot
	errc  chan error
}

func openStream(t *testing.T, url string) (*stream, int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		return nil, resp.StatusCode
	}
	t.Cleanup(func() { resp.Body.Close() })
	s := &stream{resp: resp, snaps: make(chan ui.Snapshot, 64), errc: make(chan error, 1)}
	go func() {
		rd := bufio.NewReader(resp.Body)
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				s.errc <- err
				return
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var snap ui.Snapshot
				if err := json.Unmarshal([]byte(data), &snap); err != nil {
					s.errc <- fmt.Errorf("snapshot %q: %w", data, err)
					return
				}
				s.snaps <- snap
			}
		}
	}()
	return s, 200
}

// next waits up to 10 s for the next snapshot.
func (s *stream) next(t *testing.T) ui.Snapshot {
	t.Helper()
	select {
	case snap := <-s.snaps:
		return snap
	case err := <-s.errc:
		t.Fatalf("event stream: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot within 10s")
	}
	return ui.Snapshot{}
}

func report(t *testing.T, snap ui.Snapshot) status.Report {
	t.Helper()
	var r status.Report
	if err := json.Unmarshal(snap.Report, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEventStreamBound(t *testing.T) {
	t.Parallel()
	base, s, _ := serve(t, ui.Config{MaxClients: 2})
	a, _ := openStream(t, base+"/events")
	a.next(t)
	b, _ := openStream(t, base+"/events")
	b.next(t)
	if _, code := openStream(t, base+"/events"); code != 503 {
		t.Fatalf("third stream with MaxClients 2: %d, want 503", code)
	}
	// The page itself still loads.
	if r := do(t, noRedirect(), base+"/", nil); r.StatusCode != 200 {
		t.Errorf("GET / beside full streams: %d", r.StatusCode)
	}
	a.resp.Body.Close()
	porticotest.Eventually(t, 5*time.Second, "a closed stream frees its slot", func() error {
		if n := s.Clients(); n != 1 {
			return fmt.Errorf("%d clients", n)
		}
		return nil
	})
	c, code := openStream(t, base+"/events")
	if code != 200 {
		t.Fatalf("stream after one closed: %d", code)
	}
	c.next(t)
}

// clientFrom is an HTTP client whose connections come from the loopback
// address src (Linux routes all of 127/8 to lo).
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// openStreamFrom opens an event stream from src with the bearer token and
// returns its status; a 200 stream stays open until the test ends.
func openStreamFrom(t *testing.T, base, src, token string) int {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := clientFrom(src).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Cleanup(func() { resp.Body.Close() })
	return 200
}

// TestEventStreamsPerClientAddress: one client address holds at most
// MaxClientsPerAddr streams, all together at most MaxClients; requests
// without the token never take a slot, however many, so a local user
// without it cannot lock the operator out.
func TestEventStreamsPerClientAddress(t *testing.T) {
	t.Parallel()
	const token = "operator-token"
	base, s, _ := serve(t, ui.Config{Token: token, MaxClients: 4, MaxClientsPerAddr: 2})

	// A local user without the token: 50 tries at once, none gets a stream.
	var wg sync.WaitGroup
	codes := make(chan int, 50)
	for range 50 {
		wg.Go(func() {
			resp, err := clientFrom("127.0.0.9").Get(base + "/events")
			if err != nil {
				codes <- -1
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 401 {
			t.Errorf("/events without the token: %d, want 401", c)
		}
	}
	if n := s.Clients(); n != 0 {
		t.Errorf("%d streams held after requests without the token, want 0", n)
	}

	for i, tc := range []struct {
		src  string
		want int
	}{
		{"127.0.0.1", 200}, {"127.0.0.1", 200},
		{"127.0.0.1", 503}, // its address is full
		{"127.0.0.2", 200}, {"127.0.0.2", 200},
		{"127.0.0.3", 503}, // all are full
	} {
		if got := openStreamFrom(t, base, tc.src, token); got != tc.want {
			t.Errorf("stream %d from %s: %d, want %d", i, tc.src, got, tc.want)
		}
	}
	if n := s.Clients(); n != 4 {
		t.Errorf("%d streams, want 4", n)
	}
}

// TestTokenRedirectStaysOnThePage: the redirect after ?token= goes only to
// the page's own paths. Hostile request targets (protocol-relative,
// backslash, absolute URI, their percent-encoded forms) are sent raw, as an
// attacker's link would have a browser send them.
func TestTokenRedirectStaysOnThePage(t *testing.T) {
	t.Parallel()
	const token = "tok"
	base, _, _ := serve(t, ui.Config{Token: token})
	addr := strings.TrimPrefix(base, "http://")
	for _, tc := range []struct{ target, want string }{
		{"/?token=tok", "/"},
		{"/?token=tok&x=1", "/?x=1"},
		{"/app.js?token=tok", "/app.js"},
		{"/api/status?token=tok", "/api/status"},
		{"//evil.example/?token=tok", "/"},
		{"//evil.example?token=tok", "/"},
		{"/\\evil.example/?token=tok", "/"},
		{"/%5Cevil.example/?token=tok", "/"},
		{"/%2F%2Fevil.example/?token=tok", "/"},
		{"/%2f/evil.example?token=tok", "/"},
		{"/.//evil.example?token=tok", "/"},
		{"https://evil.example/?token=tok", "/"},
		{"http://evil.example//evil.example?token=tok", "/"},
		{"/%09/evil.example?token=tok", "/"},
		{"/?token=tok&next=//evil.example", "/?next=%2F%2Fevil.example"},
	} {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", tc.target, addr)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil {
			t.Errorf("GET %s: %v", tc.target, err)
			continue
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != 303 || loc != tc.want {
			t.Errorf("GET %s: %d to %q, want 303 to %q", tc.target, resp.StatusCode, loc, tc.want)
		}
		if u, err := url.Parse(loc); err != nil || u.Host != "" || u.Scheme != "" || strings.HasPrefix(loc, "//") || strings.Contains(loc, "\\") {
			t.Errorf("GET %s: redirect %q may leave the page", tc.target, loc)
		}
	}
}

func putContainer(t *testing.T, e *storetest.Etcd, c store.Container) {
	t.Helper()
	keys := store.NewKeys(store.DefaultPrefix)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Client.Put(context.Background(), keys.Container(c.Host, c.ID), string(b)); err != nil {
		t.Fatal(err)
	}
}

func TestLiveUpdatesAndHostileText(t *testing.T) {
	t.Parallel()
	base, _, e := serve(t, ui.Config{Routing: routing.Options{Network: "pnet"}})
	st, _ := openStream(t, base+"/events")
	first := st.next(t)
	if len(report(t, first).Routes) != 0 {
		t.Fatalf("routes before any container: %v", report(t, first).Routes)
	}
	putContainer(t, e, store.Container{ID: "aaaaaaaaaaaaaaaa", Name: "web", Host: "node1", State: "running",
		Labels:   map[string]string{"portico.vhost": "web.test"},
		Networks: map[string]store.Network{"pnet": {IPv4: "172.30.0.5"}}, Ports: []store.Port{{Port: 80, Proto: "tcp"}}})
	putContainer(t, e, store.Container{ID: "bbbbbbbbbbbbbbbb", Name: "bad", Host: "node2", State: "running",
		Labels:   map[string]string{"portico.vhost": "bad.test", "portico.port": "eighty"},
		Networks: map[string]store.Network{"pnet": {IPv4: "172.30.0.6"}}})
	// Docker names cannot hold markup, but label values and host names
	// written straight into etcd can.
	const hostile = `<script>alert(1)</script><img src=x onerror=alert(2)>`
	putContainer(t, e, store.Container{ID: "cccccccccccccccc", Name: "evil", Host: "node<b>3", State: "running",
		Labels:   map[string]string{"portico.vhost": hostile},
		Networks: map[string]store.Network{"pnet": {IPv4: "172.30.0.7"}}})

	deadline := time.Now().Add(10 * time.Second)
	for {
		snap := st.next(t)
		r := report(t, snap)
		var route, problem, evil bool
		for _, rt := range r.Routes {
			route = route || (rt.Host == "web.test" && len(rt.Upstreams) == 1)
		}
		for _, p := range r.Problems {
			problem = problem || (p.Container == "bad" && p.Label == "portico.port" && p.Value == "eighty")
			evil = evil || (p.Container == "evil" && p.Label == "portico.vhost" && strings.HasPrefix(hostile, p.Value))
		}
		if route && problem && evil {
			raw := string(snap.Report)
			if strings.Contains(raw, "<script>") || strings.Contains(raw, "<img") {
				t.Errorf("snapshot carries raw markup: %s", raw)
			}
			break
		}
		t.Logf("snapshot without both yet: %s", snap.Report)
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot with the route and the problem; last: %s", snap.Report)
		}
	}
}

// The page's script puts data into the DOM as text only.
func TestScriptNeverParsesData(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(string(b), bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
	html, err := os.ReadFile("assets/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script>", "http://", "https://", "style="} {
		if strings.Contains(string(html), bad) {
			t.Errorf("index.html has %q (inline script, external asset or inline style)", bad)
		}
	}
	if !strings.Contains(string(html), `name="viewport"`) {
		t.Error("index.html has no viewport meta tag")
	}
}

func TestEncodeBound(t *testing.T) {
	t.Parallel()
	var rep status.Report
	rep.Counts = map[string]int{"containers": 5000}
	for i := range 5000 {
		rep.Containers = append(rep.Containers, status.Container{Name: fmt.Sprintf("c%05d-%s", i, strings.Repeat("x", 100)), Node: "n", State: "running"})
	}
	full, err := ui.Encode(rep, 7, true, nil, time.Now(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	const max = 64 << 10
	b, err := ui.Encode(rep, 7, true, nil, time.Now(), max)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > max || len(full) <= max {
		t.Fatalf("full %d bytes, bounded %d bytes, bound %d", len(full), len(b), max)
	}
	var snap ui.Snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		t.Fatal(err)
	}
	r := report(t, snap)
	if !snap.Truncated || len(r.Containers) == 0 || len(r.Containers) >= 5000 || r.Counts["containers"] != 5000 {
		t.Errorf("truncated=%t containers=%d counts=%v", snap.Truncated, len(r.Containers), r.Counts)
	}
	if _, err := ui.Encode(rep, 7, true, nil, time.Now(), 10); err == nil {
		t.Error("a bound below an empty report's size: no error")
	}
}

// fixedCharts is a traffic history for the handler test.
type fixedCharts struct{ c traffic.Charts }

func (f fixedCharts) Charts() traffic.Charts { return f.c }

// TestTrafficAPI: /api/traffic serves the charts when the page has them,
// says why not otherwise; the charting library is served from the page's
// own origin under the same CSP.
func TestTrafficAPI(t *testing.T) {
	t.Parallel()
	c := noRedirect()
	nan := traffic.Num(math.NaN())
	charts := traffic.Charts{IntervalSeconds: 5, Times: []int64{10, 15},
		Sites: []traffic.SiteChart{{Site: "a.test", Requests: 100, RPS: []traffic.Num{nan, 20}}}}
	for _, tc := range []struct {
		name string
		cfg  ui.Config
		want string
	}{
		{"with traffic", ui.Config{Traffic: fixedCharts{charts}}, `"available":true,"interval_seconds":5,"times":[10,15],"sites":[{"site":"a.test","requests":100,"server_errors":0,"upstream_failures":0,"rps":[null,20]`},
		{"without", ui.Config{}, `"available":false,"why":"per-site traffic is counted by the nginx stage`},
	} {
		base, _, _ := serve(t, tc.cfg)
		resp, err := c.Get(base + "/api/traffic")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, b)
		}
		for _, p := range []string{"/uPlot.iife.min.js", "/uPlot.min.css"} {
			r := do(t, c, base+p, nil)
			if r.StatusCode != 200 || !strings.Contains(r.Header.Get("Content-Security-Policy"), "default-src 'self'") {
				t.Errorf("%s: GET %s = %d, CSP %q", tc.name, p, r.StatusCode, r.Header.Get("Content-Security-Policy"))
			}
		}
	}
}
