package nginx

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/portico/portico/internal/nginx/dynamic"
	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// seenBodies asks host n times and returns the distinct bodies' prefixes
// (the echo server's name).
func (h *harness) seenNames(host string, n int) (map[string]int, error) {
	seen := map[string]int{}
	for range n {
		c, b, err := h.get(host)
		if err != nil {
			return nil, err
		}
		if c != 200 {
			return nil, fmt.Errorf("%s: %d %q", host, c, b)
		}
		name, _, _ := strings.Cut(b, " ")
		seen[name]++
	}
	return seen, nil
}

// Every kind of change a running proxy sees goes live with no reload: a
// vhost added and removed, replicas joining and leaving, a wildcard, the
// default route, a certificate added and renewed.
func TestDynamicChangesWithoutReload(t *testing.T) {
	h := startStage(t, true, nil)
	a, b := echoServer(t, "A"), echoServer(t, "B")
	h.putContainer("a1", a, map[string]string{routing.LabelVhost: "app.test"})
	h.want("app.test", 200, "A host=app.test")
	reloads := h.stage.Reloads()

	// A replica joins: both serve.
	h.putContainer("a2", b, map[string]string{routing.LabelVhost: "app.test"})
	h.eventually("both replicas serve", func() error {
		seen, err := h.seenNames("app.test", 10)
		if err != nil {
			return err
		}
		if seen["A"] == 0 || seen["B"] == 0 {
			return fmt.Errorf("seen %v", seen)
		}
		return nil
	})
	// One leaves: only the other serves.
	h.deleteKey(h.keys.Container("node1", "a1"))
	h.eventually("only B serves", func() error {
		seen, err := h.seenNames("app.test", 6)
		if err != nil {
			return err
		}
		if seen["A"] != 0 {
			return fmt.Errorf("seen %v", seen)
		}
		return nil
	})
	// A wildcard answers any depth below it, as nginx's server_name does.
	h.putContainer("w1", a, map[string]string{routing.LabelVhost: "*.wild.test"})
	h.want("x.y.wild.test", 200, "A host=x.y.wild.test")
	h.want("wild.test", 404, "")
	// The default route answers unknown names.
	h.want("nowhere.test", 404, "")
	h.putContainer("d1", b, map[string]string{routing.LabelVhost: "fallback.test", routing.LabelDefault: "true"})
	h.want("nowhere.test", 200, "B host=nowhere.test")
	h.deleteKey(h.keys.Container("node1", "d1"))
	h.want("nowhere.test", 404, "")

	// A certificate, then its renewal.
	put := func(serial int64) {
		bu := selfSigned(t, serial, "app.test")
		if _, err := store.PutJSON(context.Background(), h.etcd.Client, h.keys.CertBundle(bu.Primary), bu); err != nil {
			t.Fatal(err)
		}
	}
	for _, serial := range []int64{2001, 2002} {
		put(serial)
		h.eventually(fmt.Sprintf("serial %d", serial), func() error {
			s, err := tlsSerial(h.https, "app.test")
			if err != nil {
				return err
			}
			if s != serial {
				return fmt.Errorf("serial %d", s)
			}
			return nil
		})
	}
	// The vhost goes: 404, and its certificate is no longer shown.
	h.deleteKey(h.keys.Container("node1", "a2"))
	h.want("app.test", 404, "")
	h.eventually("app.test handshake rejected", func() error {
		if _, err := tlsSerial(h.https, "app.test"); err == nil {
			return fmt.Errorf("handshake for a removed vhost succeeded")
		}
		return nil
	})
	if got := h.stage.Reloads(); got != reloads {
		t.Errorf("reloads %d -> %d across route and certificate changes; want none", reloads, got)
	}
}

func tlsSerial(addr, sni string) (int64, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
}

// A request whose Host names another site than its TLS handshake did is
// refused with 421: a site's content never goes out under another site's
// certificate.
func TestDynamicHostMustMatchSNI(t *testing.T) {
	h := startStage(t, true, nil)
	a, b := echoServer(t, "A"), echoServer(t, "B")
	h.putContainer("a1", a, map[string]string{routing.LabelVhost: "a.test", routing.LabelHTTPS: routing.HTTPSBoth})
	h.putContainer("b1", b, map[string]string{routing.LabelVhost: "b.test", routing.LabelHTTPS: routing.HTTPSBoth})
	for i, n := range []string{"a.test", "b.test"} {
		bu := selfSigned(t, int64(3000+i), n)
		if _, err := store.PutJSON(context.Background(), h.etcd.Client, h.keys.CertBundle(bu.Primary), bu); err != nil {
			t.Fatal(err)
		}
	}
	get := func(sni, host string) (int, string, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: sni, InsecureSkipVerify: true}, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", "https://"+h.https+"/", nil)
		req.Host = host
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.String(), nil
	}
	h.eventually("b.test over HTTPS", func() error {
		c, body, err := get("b.test", "b.test")
		if err != nil || c != 200 || !strings.HasPrefix(body, "B ") {
			return fmt.Errorf("%d %q %v", c, body, err)
		}
		return nil
	})
	c, body, err := get("a.test", "b.test")
	if err != nil || c != http.StatusMisdirectedRequest || strings.Contains(body, "B host") {
		t.Errorf("SNI a.test, Host b.test: %d %q %v; want 421 and no content of b.test", c, body, err)
	}
}

// A replica that refuses connections is skipped within the request: a
// client that does not retry sees no error.
func TestDynamicDeadReplicaSkipped(t *testing.T) {
	h := startStage(t, false, nil)
	a := echoServer(t, "A")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now: connections are refused
	h.putContainer("a1", a, map[string]string{routing.LabelVhost: "app.test"})
	h.putContainer("a2", dead, map[string]string{routing.LabelVhost: "app.test"})
	h.eventually("two peers pushed", func() error {
		b, err := os.ReadFile(render.NewDynamicPaths(h.dir).StateFile)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), ":"+strconv.Itoa(dead)) {
			return fmt.Errorf("state file without the dead peer:\n%s", b)
		}
		return nil
	})
	seen, err := h.seenNames("app.test", 20)
	if err != nil || seen["A"] != 20 {
		t.Errorf("with one dead replica: %v %v", seen, err)
	}
}

// The control endpoint takes data only from Portico's user, and refuses
// what is not a valid table or certificate without changing what nginx
// serves.
func TestDynamicControlRefusesGarbage(t *testing.T) {
	h := startStage(t, true, nil)
	a := echoServer(t, "A")
	h.putContainer("a1", a, map[string]string{routing.LabelVhost: "app.test"})
	h.want("app.test", 200, "A host=app.test")
	paths := render.NewDynamicPaths(h.dir)
	fi, err := os.Stat(filepath.Dir(paths.ControlSocket))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("control socket dir: %v %v; want 0700", fi.Mode(), err)
	}
	ctl := dynamic.NewControl(paths.ControlSocket)
	defer ctl.Close()
	ctx := context.Background()
	_, before, err := ctl.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"no header":          "route\tevil.test\thttp\t0\t0\t\t127.0.0.1:1\n",
		"bad scheme":         "portico-routes 1\nroute\tevil.test\tfile\t0\t0\t\t127.0.0.1:1\n",
		"bad host":           "portico-routes 1\nroute\tevil test;\thttp\t0\t0\t\t127.0.0.1:1\n",
		"bad cert id":        "portico-routes 1\nroute\tevil.test\thttp\t0\t0\t../../etc\t127.0.0.1:1\n",
		"missing fields":     "portico-routes 1\nroute\tevil.test\thttp\n",
		"unknown kind":       "portico-routes 1\nexec\tos.execute('id')\n",
		"good then bad line": "portico-routes 1\nroute\tevil.test\thttp\t0\t0\t\t127.0.0.1:1\nroute\tx\n",
		"fastcgi, no root":   "portico-routes 1\nroute\tevil.test\tfastcgi\t0\t0\t\t127.0.0.1:1\n",
		"root, not fastcgi":  "portico-routes 1\nroute\tevil.test\thttp\t0\t0\t\t127.0.0.1:1\troot=/srv\n",
		"root with ..":       "portico-routes 1\nroute\tevil.test\tfastcgi\t0\t0\t\t127.0.0.1:1\troot=/srv/../etc\n",
		"root with a var":    "portico-routes 1\nroute\tevil.test\tfastcgi\t0\t0\t\t127.0.0.1:1\troot=/srv/$host\n",
		"root twice":         "portico-routes 1\nroute\tevil.test\tfastcgi\t0\t0\t\t127.0.0.1:1\troot=/a\troot=/b\n",
		"unknown option":     "portico-routes 1\nroute\tevil.test\thttp\t0\t0\t\t127.0.0.1:1\tlua=os.exit()\n",
		"star inside":        "portico-routes 1\nroute\twww.*.test\thttp\t0\t0\t\t127.0.0.1:1\n",
		"both wildcards":     "portico-routes 1\nroute\t*.example.*\thttp\t0\t0\t\t127.0.0.1:1\n",
		// Paths: every listed path has its line and the reverse; a path
		// is a validated prefix; the list is longest first.
		"path not listed":     "portico-routes 1\nroute\tevil.test\thttp\t0\t0\t\t127.0.0.1:1\npath\tevil.test\t/a\thttp\t0\t0\t\t127.0.0.1:1\n",
		"listed path missing": "portico-routes 1\nroute\tevil.test\thttp\t0\t0\t\t127.0.0.1:1\tpath-list=/a\n",
		"path traversal":      "portico-routes 1\nroute\tevil.test\thttp\t0\t0\t\t127.0.0.1:1\tpath-list=/a/..\npath\tevil.test\t/a/..\thttp\t0\t0\t\t127.0.0.1:1\n",
		"path with space":     "portico-routes 1\nroute\tevil.test\thttp\t0\t0\t\t127.0.0.1:1\npath\tevil.test\t/a b\thttp\t0\t0\t\t127.0.0.1:1\n",
		"path pattern chars":  "portico-routes 1\nroute\tevil.test\thttp\t0\t0\t\t127.0.0.1:1\tpath-list=/a%\npath\tevil.test\t/a%\thttp\t0\t0\t\t127.0.0.1:1\n",
		"list not sorted":     "portico-routes 1\nroute\tevil.test\thttp\t0\t0\t\t127.0.0.1:1\tpath-list=/a /bb\npath\tevil.test\t/a\thttp\t0\t0\t\t127.0.0.1:1\npath\tevil.test\t/bb\thttp\t0\t0\t\t127.0.0.1:1\n",
		"bad dest":            "portico-routes 1\nroute\tevil.test\thttp\t0\t0\t\t127.0.0.1:1\tpath-list=/a\npath\tevil.test\t/a\thttp\t0\t0\t\t127.0.0.1:1\tpath-dest=http://x\n",
		"bad strip":           "portico-routes 1\nroute\tevil.test\thttp\t0\t0\t\t127.0.0.1:1\tpath-list=/a\npath\tevil.test\t/a\thttp\t0\t0\t\t127.0.0.1:1\tpath-strip=yes\n",
		"root path line":      "portico-routes 1\nroute\tevil.test\thttp\t0\t0\t\t127.0.0.1:1\tpath-list=/\npath\tevil.test\t/\thttp\t0\t0\t\t127.0.0.1:1\n",
	} {
		if err := ctl.PutRoutes(ctx, []byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, c := range map[string]dynamic.Cert{
		"junk":      {ID: "0123456789abcdef0123456789abcdef", FullChain: "junk", Key: "junk"},
		"bad id":    {ID: "../x", FullChain: "junk", Key: "junk"},
		"no key":    {ID: "0123456789abcdef0123456789abcdee", FullChain: selfSigned(t, 9, "x.test").FullChain(), Key: ""},
		"huge junk": {ID: "0123456789abcdef0123456789abcded", FullChain: strings.Repeat("A", 1<<20), Key: "k"},
	} {
		if err := ctl.PutCert(ctx, c); err == nil {
			t.Errorf("certificate %s: accepted", name)
		}
	}
	if _, after, err := ctl.State(ctx); err != nil || after != before {
		t.Errorf("table version %q -> %q (%v): a refused push changed it", before, after, err)
	}
	h.want("app.test", 200, "A host=app.test")
	h.want("evil.test", 404, "")
}

// Session resumption still works with certificates set per handshake:
// TLS 1.3 (Go's client) and TLS 1.2 by session id from nginx's shared
// cache (openssl s_client: Go's client resumes TLS 1.2 only from tickets,
// which are off).
func TestDynamicSessionResumption(t *testing.T) {
	h := startStage(t, true, nil)
	a := echoServer(t, "A")
	h.putContainer("a1", a, map[string]string{routing.LabelVhost: "app.test", routing.LabelHTTPS: routing.HTTPSBoth})
	bu := selfSigned(t, 4001, "app.test")
	if _, err := store.PutJSON(context.Background(), h.etcd.Client, h.keys.CertBundle(bu.Primary), bu); err != nil {
		t.Fatal(err)
	}
	h.eventually("app.test over TLS", func() error {
		_, err := tlsSerial(h.https, "app.test")
		return err
	})
	out, err := exec.Command("openssl", "s_client", "-connect", h.https, "-servername", "app.test", "-tls1_2", "-reconnect").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl s_client: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "Reused, TLSv1.2"); n < 4 {
		t.Errorf("TLS 1.2: %d of 5 connections resumed a session:\n%s", n, out)
	}
	for _, v := range []uint16{tls.VersionTLS13} {
		cache := tls.NewLRUClientSessionCache(8)
		cfg := &tls.Config{ServerName: "app.test", InsecureSkipVerify: true, MinVersion: v, MaxVersion: v, ClientSessionCache: cache}
		resumed := false
		for i := 0; i < 3 && !resumed; i++ {
			conn, err := tls.Dial("tcp", h.https, cfg)
			if err != nil {
				t.Fatal(err)
			}
			// TLS 1.3 tickets arrive after the handshake: read a response.
			fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
			var buf bytes.Buffer
			buf.ReadFrom(conn)
			resumed = conn.ConnectionState().DidResume
			conn.Close()
			if !strings.Contains(buf.String(), "A host=app.test") {
				t.Fatalf("TLS %x: %q", v, buf.String())
			}
		}
		if !resumed {
			t.Errorf("TLS %x: no session resumed in 3 connections", v)
		}
	}
}

// Hostile records never reach the dynamic state as anything but data:
// whatever their labels hold, each line of the table nginx loads is well
// formed, every host passes validation (a label's list is split on
// whitespace and commas, so a fragment that is a valid name is a claim like
// any other), and every peer is a container's own address, never one a
// label spelled out.
func TestDynamicHostileRecordsNeverReachTheTable(t *testing.T) {
	h := startStage(t, true, nil)
	a := echoServer(t, "A")
	hostile := []string{
		"evil.test\nroute\tinjected.test\thttp\t0\t0\t\t127.0.0.1:1",
		"evil.test\troute",
		"evil.test\x00x",
		"evil.test\r\nX: y",
		"EVIL.test; return 200",
		"evil.test} server {",
		"*.*.evil.test",
		strings.Repeat("a", 300) + ".test",
	}
	for i, v := range hostile {
		h.putContainer(fmt.Sprintf("bad%d", i), a, map[string]string{routing.LabelVhost: v})
	}
	h.putContainer("good", a, map[string]string{routing.LabelVhost: "good.test"})
	h.want("good.test", 200, "A host=good.test")
	b, err := os.ReadFile(render.NewDynamicPaths(h.dir).StateFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if lines[0] != "portico-routes 1" {
		t.Fatalf("state file header %q", lines[0])
	}
	own := "127.0.0.1:" + strconv.Itoa(a)
	for _, l := range lines[1:] {
		f := strings.Split(l, "\t")
		switch f[0] {
		case "version", "redirect_port", "default":
			if len(f) != 2 {
				t.Errorf("malformed line %q", l)
			}
		case "route":
			if len(f) != 7 || !render.ValidHost(f[1]) || f[2] != "http" || f[6] != own {
				t.Errorf("route line %q: want a valid host routed to %s only", l, own)
			}
		default:
			t.Errorf("unexpected line %q", l)
		}
	}
	h.want("good.test", 200, "A host=good.test")
}
