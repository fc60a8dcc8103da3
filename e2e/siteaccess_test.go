package e2e

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/testenv/dockertest"
)

// statusFrom sends one request to addr from the loopback address from and
// returns the status code.
func statusFrom(from, addr, host, method, body string, lines ...string) (int, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if body != "" {
		lines = append(lines, fmt.Sprintf("Content-Length: %d", len(body)))
	}
	req := method + " / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n" + strings.Join(append(lines, ""), "\r\n") + "\r\n" + body
	if _, err := io.WriteString(c, req); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestRunSiteAccessOptions: `portico run` (dynamic path, --trusted-proxies
// 127.0.0.1, --auth-dir) in front of Docker containers with portico.allow,
// portico.auth-file, portico.max-body and portico.rate: each option on its
// own container's site, the client address as realip gives it, and a
// container with a hostile option value rejected alone.
func TestRunSiteAccessOptions(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	network := d.Network(t, "acc")
	authDir := t.TempDir()
	hash := "$6$abcdefgh$oGoxMtczJ0/xYkNKQnGuC3pOdNoGsZRZNs7n5JzX8KfMJWEmD2Bx4wBt/tMCPvjE87aPyrlQPEKxEcxV6d4J6." // secret1
	if err := os.WriteFile(filepath.Join(authDir, "users"), []byte("alice:"+hash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startRun(t, d, network, "--trusted-proxies", "127.0.0.1", "--auth-dir", authDir)
	host := func(n string) string { return n + "-" + d.RunID + ".test" }
	for name, l := range map[string]map[string]string{
		"open":    {},
		"allow":   {"portico.allow": "127.0.0.2, 10.0.0.0/8"},
		"auth":    {"portico.auth-file": "users"},
		"body":    {"portico.max-body": "1k"},
		"rate":    {"portico.rate": "1r/m", "portico.rate-burst": "1"},
		"hostile": {"portico.max-body": "10m; client_max_body_size 0"},
	} {
		labels := map[string]string{"portico.vhost": host(name), "portico.https": "off"}
		for k, v := range l {
			labels[k] = v
		}
		d.Run(t, dockertest.RunOptions{Name: name, Network: network, Labels: labels})
	}
	want := func(what string, code int, from, h, method, body string, lines ...string) {
		t.Helper()
		eventually(t, 30*time.Second, fmt.Sprintf("%s: %s -> %d", what, h, code), func() error {
			c, err := statusFrom(from, p.http, h, method, body, lines...)
			if err == nil && c != code {
				err = fmt.Errorf("got %d", c)
			}
			return err
		})
	}
	want("open site", 200, "127.0.0.3", host("open"), "GET", "")
	want("allowed client", 200, "127.0.0.2", host("allow"), "GET", "")
	want("other client", 403, "127.0.0.3", host("allow"), "GET", "")
	want("allowed client behind the trusted proxy", 200, "127.0.0.1", host("allow"), "GET", "", "X-Forwarded-For: 127.0.0.2")
	want("other client behind the trusted proxy", 403, "127.0.0.1", host("allow"), "GET", "", "X-Forwarded-For: 203.0.113.9")
	want("untrusted client claiming an allowed address", 403, "127.0.0.3", host("allow"), "GET", "", "X-Forwarded-For: 127.0.0.2")
	auth := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("alice:secret1"))
	want("no credentials", 401, "127.0.0.3", host("auth"), "GET", "")
	want("credentials", 200, "127.0.0.3", host("auth"), "GET", "", auth)
	want("small body", 200, "127.0.0.3", host("body"), "POST", strings.Repeat("x", 500))
	want("body over 1k", 413, "127.0.0.3", host("body"), "POST", strings.Repeat("x", 2000))
	want("hostile value: rejected alone", 404, "127.0.0.3", host("hostile"), "GET", "")
	// The rate: 1r/m with a burst of 1 serves two at once, then 429;
	// another client address has its own.
	want("rate route live", 200, "127.0.0.4", host("rate"), "GET", "")
	var codes []int
	for range 3 {
		c, err := statusFrom("127.0.0.5", p.http, host("rate"), "GET", "")
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, c)
	}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Errorf("rate codes %v, want [200 200 429]", codes)
	}
	want("another client's bucket", 200, "127.0.0.6", host("rate"), "GET", "")
	out := statusJSON(t, "--data-dir", p.dataDir)
	if s := fmt.Sprint(out); !strings.Contains(s, "portico.max-body") {
		t.Errorf("status does not name the hostile label: %.2000s", s)
	}
}
