package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/testenv/dockertest"
)

// headersSeen asks the backend's /headers through nginx at addr, from the
// loopback address from, with the given extra header lines, and returns
// the header lines the backend received.
func headersSeen(from, addr, host string, lines ...string) (map[string][]string, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /headers HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n" + strings.Join(append(lines, ""), "\r\n") + "\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "remote=") {
		return nil, fmt.Errorf("%s %q", resp.Status, body)
	}
	got := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(body)), "\n")[1:] {
		k, v, _ := strings.Cut(l, ": ")
		got[http.CanonicalHeaderKey(k)] = append(got[http.CanonicalHeaderKey(k)], v)
	}
	return got, nil
}

// TestRunClientHeadersAndTrustedProxies: `portico run --trusted-proxies
// 127.0.0.1` in front of a backend container. A client at 127.0.0.2 cannot
// make the container believe another address (X-Client-IP, True-Client-IP
// included), scheme, port or path, nor send it an h2c upgrade or a header
// it names in Connection (the dynamic path drops those); a proxy at 127.0.0.1 has its X-Forwarded-For
// chain believed and extended.
func TestRunClientHeadersAndTrustedProxies(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "hdr")
	p := startRun(t, d, net, "--trusted-proxies", "127.0.0.1")
	host := "hdr-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "hdr", Network: net, Labels: map[string]string{"portico.vhost": host}})
	eventually(t, 30*time.Second, "backend reachable through nginx", func() error {
		return expect200(p.http, host, "name="+d.Name("hdr"))
	})
	_, port, _ := strings.Cut(p.http, ":")

	check := func(what string, got map[string][]string, want map[string]string) {
		t.Helper()
		for k, v := range want {
			vals := got[k]
			switch {
			case v == "" && len(vals) > 0:
				t.Errorf("%s: backend got %s %q, want none", what, k, vals)
			case v != "" && !slices.Equal(vals, []string{v}):
				t.Errorf("%s: backend got %s %q, want %q", what, k, vals, v)
			}
		}
	}
	// Polled: a reload (the local-CA certificate arrives) may be under way.
	seen := func(from string, lines ...string) map[string][]string {
		t.Helper()
		var got map[string][]string
		eventually(t, 15*time.Second, "/headers from "+from, func() (err error) {
			got, err = headersSeen(from, p.http, host, lines...)
			return err
		})
		return got
	}
	got := seen("127.0.0.2",
		"X-Forwarded-For: 203.0.113.7", "X-Real-IP: 203.0.113.8", "Forwarded: for=203.0.113.9;proto=https",
		"X-Forwarded-Port: 8443", "X-Forwarded-Ssl: on", "X-Forwarded-Prefix: /admin", "X-Original-URL: /admin/secret",
		"X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
		"X-Client-IP: 203.0.113.10", "True-Client-IP: 203.0.113.11", "Connection: X-Hop", "X-Hop: 1")
	check("untrusted client", got, map[string]string{
		"X-Forwarded-For": "127.0.0.2", "X-Real-Ip": "127.0.0.2", "Forwarded": "", "X-Forwarded-Port": port,
		"X-Forwarded-Ssl": "off", "X-Forwarded-Prefix": "", "X-Original-Url": "", "X-Forwarded-Proto": "http",
		"X-Forwarded-Host": host, "Upgrade": "", "Connection": "", "Http2-Settings": "",
		"X-Client-Ip": "", "True-Client-Ip": "", "X-Hop": "",
	})

	got = seen("127.0.0.1", "X-Forwarded-For: 203.0.113.7")
	check("trusted proxy", got, map[string]string{"X-Forwarded-For": "203.0.113.7, 127.0.0.1", "X-Real-Ip": "203.0.113.7"})
}

// A --trusted-proxies value that is not a CIDR, or trusts everyone, stops
// portico at once with an error naming the flag and the value.
func TestRunRefusesBadTrustedProxies(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"10.0.0.0/8;include", "0.0.0.0/0"} {
		cmd := exec.Command(binary, "nginx", "--data-dir", t.TempDir(), "--etcd-endpoints", "http://127.0.0.1:1", "--trusted-proxies", bad)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "--trusted-proxies") || !strings.Contains(string(out), fmt.Sprintf("%q", bad)) {
			t.Errorf("--trusted-proxies %s: %v\n%s", bad, err, out)
		}
	}
}

// TestFastCGIContainer (issue 15): a container declared as nginx-proxy
// declares PHP-FPM (VIRTUAL_PROTO=fastcgi, VIRTUAL_ROOT, VIRTUAL_PORT) is
// served through nginx by FastCGI, its root in SCRIPT_FILENAME. The
// backend is the test image (FROM scratch) answering FastCGI with Go's
// net/http/fcgi.
func TestFastCGIContainer(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "fcgi")
	p := startRun(t, d, net)
	host := "php-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "php", Network: net,
		Env: []string{"FASTCGI_PORT=9000", "VIRTUAL_HOST=" + host, "VIRTUAL_PORT=9000", "VIRTUAL_PROTO=fastcgi", "VIRTUAL_ROOT=/app/public", "HTTPS_METHOD=nohttps"}})
	eventually(t, 20*time.Second, "FastCGI container reachable through nginx", func() error {
		return expect200(p.http, host, "fastcgi name="+d.Name("php")+" script=/app/public/ host="+host+" path=/")
	})
}
