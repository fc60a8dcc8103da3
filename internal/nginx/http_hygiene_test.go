package nginx

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// seen is what the upstream received.
type seen struct {
	Remote string      `json:"remote"`
	Header http.Header `json:"header"`
}

// headerEcho is a real upstream (HTTP/1.1 and cleartext HTTP/2, for
// grpc_pass) that answers with the request's headers and peer as JSON. A
// websocket upgrade is accepted with 101 and the connection then echoes.
func headerEcho(t *testing.T) (port int) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") && strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			rw.Flush()
			io.Copy(conn, rw) // echo until the client closes
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen{Remote: r.RemoteAddr, Header: r.Header})
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ = strconv.Atoi(p)
	return port
}

// dialFrom connects to addr from the loopback address from (any 127/8
// address is local on Linux), so the client's address differs from
// nginx's own.
func dialFrom(from, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, nil
}

// rawGet sends a hand-written request (header lines as given, so the test
// controls duplicates and case) and returns what the upstream saw.
func rawGet(from, addr, host string, lines ...string) (int, seen, error) {
	c, err := dialFrom(from, addr)
	if err != nil {
		return 0, seen{}, err
	}
	defer c.Close()
	req := "GET / HTTP/1.1\r\nHost: " + host + "\r\n" + strings.Join(append(lines, ""), "\r\n") + "\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return 0, seen{}, err
	}
	return readSeen(bufio.NewReader(c))
}

// seen200 polls rawGet until it is answered 200: right after a reload, an
// old worker may still take a connection and answer with the old config.
func (h *harness) seen200(from, host string, lines ...string) seen {
	h.t.Helper()
	var got seen
	h.eventually(fmt.Sprintf("%s from %s -> 200", host, from), func() error {
		code, s, err := rawGet(from, h.http, host, lines...)
		if err == nil && code != 200 {
			err = fmt.Errorf("got %d", code)
		}
		got = s
		return err
	})
	return got
}

func readSeen(br *bufio.Reader) (int, seen, error) {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, seen{}, err
	}
	defer resp.Body.Close()
	var s seen
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(b, &s); err != nil {
			return resp.StatusCode, s, fmt.Errorf("upstream answer %q: %w", b, err)
		}
	}
	return resp.StatusCode, s, nil
}

// spoofed are client headers that claim another client, scheme, port or
// path; some twice, some in lower case.
var spoofed = []string{
	"X-Forwarded-For: 203.0.113.7",
	"x-forwarded-for: 198.51.100.1",
	"X-Real-IP: 203.0.113.8",
	"Forwarded: for=203.0.113.9;proto=https;host=evil.example",
	"X-Forwarded-Port: 8443",
	"X-Forwarded-Ssl: on",
	"X-Forwarded-Prefix: /admin",
	"X-Original-URL: /admin/secret",
	"x-original-url: /admin/other",
	"X-Rewrite-URL: /admin/secret",
	"X-Forwarded-Proto: https",
	"X-Forwarded-Host: evil.example",
	"Upgrade: h2c",
	"Connection: Upgrade, HTTP2-render.Settings",
	"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
	// Client addresses that frameworks believe (Express's request-ip,
	// Symfony, Rails, Laravel, CDNs' own headers).
	"X-Client-IP: 203.0.113.10",
	"True-Client-IP: 203.0.113.11",
	"Client-IP: 203.0.113.12",
	"X-Cluster-Client-IP: 203.0.113.13",
	"CF-Connecting-IP: 203.0.113.14",
	"Fastly-Client-IP: 203.0.113.15",
	"X-Forwarded-Server: evil.example",
	"X-Original-Forwarded-For: 203.0.113.16",
	"x-client-ip: 203.0.113.17",
}

// clearedClientAddrs are the client-address headers of spoofed that no
// upstream may see.
var clearedClientAddrs = map[string]string{
	"X-Client-IP": "", "True-Client-IP": "", "Client-IP": "", "X-Cluster-Client-IP": "", "CF-Connecting-IP": "",
	"Fastly-Client-IP": "", "X-Forwarded-Server": "", "X-Original-Forwarded-For": "",
}

// hopByHop are the standard hop-by-hop headers (RFC 9110 7.6.1, RFC 2616
// 13.5.1) a client may send over HTTP/1.1, and one application header that
// stays: X-HTTP-Method-Override is application semantics (docs/nginx.md).
var hopByHop = []string{
	"Keep-Alive: timeout=5",
	"TE: gzip",
	"Trailer: X-Checksum",
	"Proxy-Connection: keep-alive",
	"Proxy-Authorization: Basic dXNlcjpwYXNz",
	"X-HTTP-Method-Override: DELETE",
}

var hopByHopWant = map[string]string{
	"Keep-Alive": "", "Te": "", "Trailer": "", "Proxy-Connection": "", "Proxy-Authorization": "", "Http2-render.Settings": "",
	"X-Http-Method-Override": "DELETE",
}

// bothPaths runs f as a subtest on the dynamic path and on the static one.
func bothPaths(t *testing.T, f func(t *testing.T, dynamic bool)) {
	for _, dynamic := range []bool{true, false} {
		t.Run(map[bool]string{true: "dynamic", false: "static"}[dynamic], func(t *testing.T) { f(t, dynamic) })
	}
}

func withDynamic(dynamic bool) func(*Config) { return func(c *Config) { c.Dynamic = dynamic } }

// checkHeaders compares what the upstream saw with want; "" means the
// header must be absent.
func checkHeaders(t *testing.T, what string, got seen, want map[string]string) {
	t.Helper()
	for k, v := range want {
		vals := got.Header.Values(k)
		switch {
		case v == "" && len(vals) > 0:
			t.Errorf("%s: upstream got %s %q, want none", what, k, vals)
		case v != "" && !slices.Equal(vals, []string{v}):
			t.Errorf("%s: upstream got %s %q, want %q", what, k, vals, v)
		}
	}
}

// TestSpoofedClientHeadersNeverReachUpstream: whatever a client claims,
// the upstream sees its connection's address, nginx's scheme, port and
// host, none of the path-override or upgrade headers, none of the other
// client-address headers (X-Client-IP, True-Client-IP, ...) and none of
// the standard hop-by-hop headers; on both paths.
func TestSpoofedClientHeadersNeverReachUpstream(t *testing.T) {
	bothPaths(t, func(t *testing.T, dynamic bool) {
		h := startStage(t, false, withDynamic(dynamic))
		h.putContainer("h1", headerEcho(t), map[string]string{routing.LabelVhost: "hdr.test"})
		h.want("hdr.test", 200, `"remote"`)
		_, port, _ := net.SplitHostPort(h.http)

		got := h.seen200("127.0.0.2", "hdr.test", append(slices.Clone(spoofed), hopByHop...)...)
		checkHeaders(t, "spoofed", got, map[string]string{
			"X-Forwarded-For": "127.0.0.2", "X-Real-IP": "127.0.0.2", "Forwarded": "",
			"X-Forwarded-Port": port, "X-Forwarded-Ssl": "off", "X-Forwarded-Prefix": "", "X-Original-URL": "", "X-Rewrite-URL": "",
			"X-Forwarded-Proto": "http", "X-Forwarded-Host": "hdr.test", "Upgrade": "", "Connection": "",
		})
		checkHeaders(t, "client addresses", got, clearedClientAddrs)
		checkHeaders(t, "hop-by-hop", got, hopByHopWant)
	})
}

// TestConnectionNamedHeadersDropped: on the dynamic path, the headers a
// request names in Connection (any of its Connection lines) never reach
// the upstream, up to 16 names per request; what nginx needs (Host,
// Content-Length, Transfer-Encoding), Upgrade, and the headers Portico
// sets itself are kept or set whatever Connection names. The static path
// has no per-request code: it forwards such headers like any other
// (docs/nginx.md), and this test pins that too.
func TestConnectionNamedHeadersDropped(t *testing.T) {
	bothPaths(t, func(t *testing.T, dynamic bool) {
		h := startStage(t, false, withDynamic(dynamic))
		h.putContainer("h1", headerEcho(t), map[string]string{routing.LabelVhost: "hdr.test"})
		h.want("hdr.test", 200, `"remote"`)
		dropped := func(v string) string {
			if dynamic {
				return ""
			}
			return v
		}

		got := h.seen200("127.0.0.2", "hdr.test", "Connection: keep-alive, X-Hop-A", "X-Hop-A: a", "x-hop-a: a2",
			"connection: x-hop-b,x-hop-c", "X-Hop-B: b", "X-Hop-C: c", "X-Stays: s")
		checkHeaders(t, "named in Connection", got, map[string]string{
			"X-Hop-B": dropped("b"), "X-Hop-C": dropped("c"), "X-Stays": "s", "Connection": ""})
		if want := map[bool]int{true: 0, false: 2}[dynamic]; len(got.Header.Values("X-Hop-A")) != want {
			t.Errorf("named in Connection, sent twice: upstream got X-Hop-A %q, want %d values", got.Header.Values("X-Hop-A"), want)
		}

		got = h.seen200("127.0.0.2", "hdr.test", "Connection: Host, Content-Length, Transfer-Encoding, X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host",
			"X-Forwarded-For: 203.0.113.7")
		checkHeaders(t, "Connection naming what nginx and Portico set", got, map[string]string{
			"X-Forwarded-For": "127.0.0.2", "X-Real-IP": "127.0.0.2", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "hdr.test"})

		// The bound: the first 16 names count, later ones are forwarded.
		var names, lines []string
		for i := range 20 {
			names = append(names, fmt.Sprintf("X-T%d", i))
			lines = append(lines, fmt.Sprintf("X-T%d: %d", i, i))
		}
		got = h.seen200("127.0.0.2", "hdr.test", append(lines, "Connection: "+strings.Join(names, ", "))...)
		checkHeaders(t, "20 names in Connection", got, map[string]string{"X-T0": dropped("0"), "X-T15": dropped("15"), "X-T16": "16", "X-T19": "19"})

		// A websocket upgrade names Upgrade in Connection: it still works.
		h.eventually("websocket upgrade", func() error {
			c, err := dialFrom("127.0.0.1", h.http)
			if err != nil {
				return err
			}
			defer c.Close()
			fmt.Fprintf(c, "GET /chat HTTP/1.1\r\nHost: hdr.test\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade, X-Hop-A\r\n"+
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				return fmt.Errorf("%s, want 101", resp.Status)
			}
			return nil
		})
	})
}

// TestTrustedProxiesAppendTheChain: with --trusted-proxies 127.0.0.1, a
// request from 127.0.0.1 has its X-Forwarded-For believed (X-Real-IP is the
// first untrusted address from the right) and the chain is forwarded with
// the proxy appended; a request from 127.0.0.2 is still replaced.
func TestTrustedProxiesAppendTheChain(t *testing.T) {
	h := startStage(t, false, func(c *Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} })
	h.putContainer("h1", headerEcho(t), map[string]string{routing.LabelVhost: "hdr.test"})
	h.want("hdr.test", 200, `"remote"`)

	for _, tt := range []struct {
		from  string
		lines []string
		want  map[string]string
	}{
		{"127.0.0.1", []string{"X-Forwarded-For: 203.0.113.7, 198.51.100.1", "X-Real-IP: 10.9.9.9", "Forwarded: for=10.9.9.9", "True-Client-IP: 10.9.9.9", "CF-Connecting-IP: 10.9.9.9"},
			map[string]string{"X-Forwarded-For": "203.0.113.7, 198.51.100.1, 127.0.0.1", "X-Real-IP": "198.51.100.1", "Forwarded": "", "True-Client-IP": "", "CF-Connecting-IP": ""}},
		{"127.0.0.1", nil, map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"}},
		{"127.0.0.2", []string{"X-Forwarded-For: 203.0.113.7", "X-Real-IP: 10.9.9.9"},
			map[string]string{"X-Forwarded-For": "127.0.0.2", "X-Real-IP": "127.0.0.2"}},
		{"127.0.0.2", spoofed, map[string]string{"X-Forwarded-For": "127.0.0.2", "X-Real-IP": "127.0.0.2", "Forwarded": "",
			"X-Original-URL": "", "X-Forwarded-Prefix": "", "Upgrade": ""}},
	} {
		got := h.seen200(tt.from, "hdr.test", tt.lines...)
		checkHeaders(t, fmt.Sprintf("from %s %q", tt.from, tt.lines), got, tt.want)
	}
}

// TestGRPCHeadersAreSetToo: the grpc_pass path sets and clears the same
// headers (HTTP/2 over TLS to nginx, cleartext HTTP/2 upstream), on both
// paths.
func TestGRPCHeadersAreSetToo(t *testing.T) {
	bothPaths(t, func(t *testing.T, dynamic bool) {
		h := startStage(t, true, withDynamic(dynamic))
		h.putContainer("g1", headerEcho(t), map[string]string{routing.LabelVhost: "g.test", routing.LabelProtocol: routing.ProtoGRPC})
		b := selfSigned(t, 7, "g.test")
		if _, err := store.PutJSON(context.Background(), h.etcd.Client, h.keys.CertBundle(b.Primary), b); err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(h.https)
		tr := &http.Transport{
			TLSClientConfig: &tls.Config{ServerName: "g.test", InsecureSkipVerify: true},
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return dialFrom("127.0.0.2", addr)
			},
			Protocols: new(http.Protocols),
		}
		tr.Protocols.SetHTTP2(true)
		defer tr.CloseIdleConnections()
		cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		var got seen
		h.eventually("g.test over HTTP/2", func() error {
			req, _ := http.NewRequest("GET", "https://"+h.https+"/", nil)
			req.Host = "g.test"
			for _, l := range append(slices.Clone(spoofed), hopByHop...) {
				k, v, _ := strings.Cut(l, ": ")
				switch http.CanonicalHeaderKey(k) {
				case "Upgrade", "Connection", "Http2-render.Settings", "Keep-Alive", "Te", "Proxy-Connection": // not in HTTP/2 (Go's client refuses them)
				default:
					req.Header.Add(k, v)
				}
			}
			resp, err := cl.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
				return fmt.Errorf("%s %s: %s", resp.Proto, resp.Status, body)
			}
			got = seen{}
			return json.Unmarshal(body, &got)
		})
		checkHeaders(t, "grpc", got, map[string]string{
			"X-Forwarded-For": "127.0.0.2", "X-Real-IP": "127.0.0.2", "Forwarded": "",
			"X-Forwarded-Port": port, "X-Forwarded-Ssl": "on", "X-Forwarded-Prefix": "", "X-Original-URL": "", "X-Rewrite-URL": "",
			"X-Forwarded-Proto": "https", "X-Forwarded-Host": "g.test", "Upgrade": "",
		})
		checkHeaders(t, "grpc client addresses", got, clearedClientAddrs)
		checkHeaders(t, "grpc hop-by-hop", got, map[string]string{"Trailer": "", "Proxy-Authorization": "", "X-Http-Method-Override": "DELETE"})
	})
}

// TestUpgradeOnlyWebsocket: Upgrade: websocket (any case) still switches
// protocols through nginx; h2c or a list never reaches the upstream; and
// normal requests keep reusing one upstream connection.
func TestUpgradeOnlyWebsocket(t *testing.T) {
	h := startStage(t, false, nil)
	h.putContainer("w1", headerEcho(t), map[string]string{routing.LabelVhost: "ws.test"})
	h.want("ws.test", 200, `"remote"`)

	for _, up := range []string{"websocket", "WebSocket"} {
		h.eventually("Upgrade: "+up+" -> 101 and an echo", func() error {
			c, err := dialFrom("127.0.0.1", h.http)
			if err != nil {
				return err
			}
			defer c.Close()
			fmt.Fprintf(c, "GET /chat HTTP/1.1\r\nHost: ws.test\r\nUpgrade: %s\r\nConnection: keep-alive, Upgrade\r\n"+
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", up)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				return fmt.Errorf("%s, want 101", resp.Status)
			}
			io.WriteString(c, "ping\n")
			if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
				return fmt.Errorf("echo %q %v", line, err)
			}
			return nil
		})
	}

	for _, up := range []string{"h2c", "websocket, h2c", "h2c, websocket", "TLS/1.2", "websocketx"} {
		got := h.seen200("127.0.0.1", "ws.test", "Upgrade: "+up, "Connection: Upgrade, HTTP2-render.Settings", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA")
		checkHeaders(t, "Upgrade "+up, got, map[string]string{"Upgrade": "", "Connection": "", "HTTP2-render.Settings": ""})
	}

	// Upstream keepalive: requests on one client connection (one worker)
	// arrive on one upstream connection, with no Connection header.
	h.eventually("three requests on one upstream connection", func() error {
		c, err := dialFrom("127.0.0.1", h.http)
		if err != nil {
			return err
		}
		defer c.Close()
		br := bufio.NewReader(c)
		var remotes []string
		for range 3 {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: ws.test\r\n\r\n")
			code, got, err := readSeen(br)
			if err != nil || code != 200 {
				return fmt.Errorf("keepalive request: %d %v", code, err)
			}
			if v := got.Header.Values("Connection"); len(v) > 0 {
				return fmt.Errorf("upstream got Connection %q", v)
			}
			remotes = append(remotes, got.Remote)
		}
		if remotes[0] != remotes[1] || remotes[1] != remotes[2] {
			return fmt.Errorf("upstream connections %q: keepalive not used", remotes)
		}
		return nil
	})
}

// TestIdleHalfSentRequestsDoNotStarve: nginx is started under a 1024 soft
// limit of open files, as systemd and most shells leave it. 2,300 clients
// each send half a request header and wait; a normal request is still
// served while they all hold their connections, and the header timeout
// then closes every one of them.
func TestIdleHalfSentRequestsDoNotStarve(t *testing.T) {
	const idle = 2300
	const headerTimeout = 6 * time.Second
	needOpenFiles(t, idle+1000)
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	conf := oneRouteConf(t, "idle.test", httpAddr)
	startShellNginx(t, conf, render.MainConf{Prefix: dir, Client: render.ClientLimits{HeaderTimeout: headerTimeout}}, httpAddr, "idle.test")
	get := func(timeout time.Duration) error { return probe(httpAddr, "idle.test", "127.0.0.1", timeout) }

	// The idle clients: each sends half a header, then waits for nginx to
	// close its connection.
	var closed atomic.Int64
	var early atomic.Int64 // closed before the header timeout
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, idle)
	begin := time.Now()
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < idle; i += 8 {
				c, err := dialFrom("127.0.0.1", httpAddr)
				if err != nil {
					errs <- fmt.Errorf("idle client %d: %w", i, err)
					return
				}
				c.SetDeadline(time.Now().Add(headerTimeout + 30*time.Second))
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				sent := time.Now()
				if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: idle.test\r\nX-Slow: "); err != nil {
					errs <- fmt.Errorf("idle client %d: %w", i, err)
					return
				}
				go func() {
					_, err := io.Copy(io.Discard, c) // returns when nginx closes or resets
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						return // not closed by nginx: counted as open
					}
					if time.Since(sent) < headerTimeout-500*time.Millisecond {
						early.Add(1)
					}
					closed.Add(1)
				}()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	opened := time.Since(begin)

	// A normal client is served while every idle one holds its connection.
	if err := get(3 * time.Second); err != nil {
		t.Fatalf("with %d idle clients (opened in %v), a normal request fails: %v", idle, opened, err)
	}
	if n := closed.Load(); n > 0 {
		t.Fatalf("%d idle clients were closed before the normal request was served (opened in %v)", n, opened)
	}
	t.Logf("%d idle clients opened in %v; a normal request was served meanwhile", idle, opened)

	// The header timeout then closes all of them, none early.
	deadline := time.Now().Add(headerTimeout + 15*time.Second)
	for closed.Load() < idle {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d idle clients still open %v after the header timeout", idle-int(closed.Load()), idle, 15*time.Second)
		}
		<-time.After(50 * time.Millisecond) // a poll interval
	}
	if n := early.Load(); n > 0 {
		t.Errorf("%d idle clients were closed before the header timeout", n)
	}
	t.Logf("all %d closed %v after the first was opened", idle, time.Since(begin))
	if err := get(3 * time.Second); err != nil {
		t.Errorf("after the idle clients: %v", err)
	}
}
