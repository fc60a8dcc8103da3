package nginx

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/routing"
)

// Hashes of "secret6" (SHA-512 crypt) and "secret4" (bcrypt), and an MD5
// one that must be refused.
const (
	testSHA512 = "$6$abcdefgh$oGoxMtczJ0/xYkNKQnGuC3pOdNoGsZRZNs7n5JzX8KfMJWEmD2Bx4wBt/tMCPvjE87aPyrlQPEKxEcxV6d4J6." // secret1
	testBcrypt = "$2a$05$L9OGhUL6Yh8cZLj7twiSo.VcLRmAQHYtdUxQucrvziJiHCG5mhtpO"                                       // secret4
	testAPR1   = "$apr1$abcdefgh$jIudz8hddYl1huJKFV04g0"
)

// slowServer answers /wait?ms=N after N milliseconds, anything else at once.
func slowServer(t testing.TB) int {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ms, err := strconv.Atoi(r.URL.Query().Get("ms")); err == nil {
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "ok body=%d host=%s", n, r.Host)
	}))
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(p)
	return port
}

// do sends one request to the stage's HTTP listener.
func (h *harness) do(method, host, path string, body io.Reader, chunked bool, user, pass string) (int, string) {
	h.t.Helper()
	req, _ := http.NewRequest(method, "http://"+h.http+path, body)
	req.Host = host
	if chunked {
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (h *harness) wantDo(what string, code int, method, host, path string, body []byte, chunked bool, user, pass string) {
	h.t.Helper()
	h.eventually(fmt.Sprintf("%s: %s %s%s -> %d", what, method, host, path, code), func() error {
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(body)
		}
		if c, b := h.do(method, host, path, r, chunked, user, pass); c != code {
			return fmt.Errorf("got %d %.200q", c, b)
		}
		return nil
	})
}

// Every access option on both paths, each route's options on that route
// alone (exact, wildcard and default routes side by side), with no reload
// on the dynamic path.
func TestSiteAccessOptions(t *testing.T) {
	for _, dyn := range []bool{true, false} {
		t.Run(map[bool]string{true: "dynamic", false: "static"}[dyn], func(t *testing.T) {
			authDir := t.TempDir()
			writeAuth := func(name, content string) {
				if err := os.WriteFile(filepath.Join(authDir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			writeAuth("users", "alice:"+testSHA512+"\n")
			writeAuth("md5", "bob:"+testAPR1+"\n")
			h := startStage(t, false, func(c *Config) { c.Dynamic = dyn; c.AuthDir = authDir })
			// nginx's workers (nobody, in tests run as root) must be able
			// to walk down to the copies, as to any data dir.
			for d := h.dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
				if err := os.Chmod(d, 0o711); err != nil {
					t.Fatal(err)
				}
			}
			up := slowServer(t)
			put := func(id string, l ...string) {
				m := map[string]string{}
				for i := 0; i+1 < len(l); i += 2 {
					m[l[i]] = l[i+1]
				}
				h.putContainer(id, up, m)
			}
			put("open", routing.LabelVhost, "open.test")
			put("deny", routing.LabelVhost, "deny.test", routing.LabelAllow, "10.0.0.0/8,fd00::/8")
			put("allow", routing.LabelVhost, "allow.test", routing.LabelAllow, "10.0.0.0/8, 127.0.0.0/8")
			put("part", routing.LabelVhost, "part.test", routing.LabelAllow, "127.0.0.0/9")
			put("partno", routing.LabelVhost, "partno.test", routing.LabelAllow, "127.128.0.0/9,::1")
			put("wild", routing.LabelVhost, "*.wild.test", routing.LabelAllow, "10.0.0.0/8")
			put("exact", routing.LabelVhost, "x.wild.test")
			put("def", routing.LabelVhost, "def.test", routing.LabelDefault, "true", routing.LabelAllow, "192.0.2.1")
			put("auth", routing.LabelVhost, "auth.test", routing.LabelAuthFile, "users")
			put("md5", routing.LabelVhost, "md5.test", routing.LabelAuthFile, "md5")
			put("body", routing.LabelVhost, "body.test", routing.LabelMaxBody, "1k")
			put("big", routing.LabelVhost, "big.test", routing.LabelMaxBody, "3m")
			put("nolimit", routing.LabelVhost, "nolimit.test", routing.LabelMaxBody, "0")
			put("slow", routing.LabelVhost, "slow.test", routing.LabelTimeout, "1s", routing.LabelConnectTimeout, "2s")
			put("rate", routing.LabelVhost, "rate.test", routing.LabelRate, "1r/m", routing.LabelRateBurst, "2")
			put("rate2", routing.LabelVhost, "rate2.test", routing.LabelRate, "1r/m", routing.LabelRateBurst, "2")

			// portico.allow: the client is 127.0.0.1.
			h.wantDo("allowed", 200, "GET", "open.test", "/", nil, false, "", "")
			h.wantDo("not in the list", 403, "GET", "deny.test", "/", nil, false, "", "")
			h.wantDo("in the list", 200, "GET", "allow.test", "/", nil, false, "", "")
			h.wantDo("a /9 prefix", 200, "GET", "part.test", "/", nil, false, "", "")
			h.wantDo("the other /9", 403, "GET", "partno.test", "/", nil, false, "", "")
			h.wantDo("wildcard's list", 403, "GET", "y.wild.test", "/", nil, false, "", "")
			h.wantDo("exact beside the wildcard", 200, "GET", "x.wild.test", "/", nil, false, "", "")
			h.wantDo("default route's list", 403, "GET", "unknown.test", "/", nil, false, "", "")
			h.wantDo("default route's own name", 403, "GET", "def.test", "/", nil, false, "", "")

			// portico.auth-file.
			h.wantDo("no credentials", 401, "GET", "auth.test", "/", nil, false, "", "")
			h.wantDo("wrong password", 401, "GET", "auth.test", "/", nil, false, "alice", "nope")
			h.wantDo("right password", 200, "GET", "auth.test", "/", nil, false, "alice", "secret1")
			h.wantDo("no auth elsewhere", 200, "GET", "open.test", "/", nil, false, "alice", "nope")
			h.wantDo("an MD5 file refuses everyone", 401, "GET", "md5.test", "/", nil, false, "bob", "secret3")
			writeAuth("users", "carol:"+testBcrypt+"\n")
			h.wantDo("a changed file takes effect", 200, "GET", "auth.test", "/", nil, false, "carol", "secret4")
			h.wantDo("a removed user is refused", 401, "GET", "auth.test", "/", nil, false, "alice", "secret1")
			copied := filepath.Join(h.dir, "auth", "users")
			if st, err := os.Stat(copied); err != nil || st.Mode().Perm() != 0o640 {
				t.Errorf("copy %s: %v, %v; want mode 0640", copied, st.Mode(), err)
			}

			// portico.max-body: Content-Length and chunked bodies.
			small, over, twoMB := make([]byte, 500), make([]byte, 2000), make([]byte, 2<<20)
			h.wantDo("small body", 200, "POST", "body.test", "/", small, false, "", "")
			h.wantDo("over the limit", 413, "POST", "body.test", "/", over, false, "", "")
			h.wantDo("over the limit, chunked", 413, "POST", "body.test", "/", over, true, "", "")
			h.wantDo("small chunked", 200, "POST", "body.test", "/", small, true, "", "")
			h.wantDo("default 1m limit", 413, "POST", "open.test", "/", twoMB, false, "", "")
			h.wantDo("default 1m limit, chunked", 413, "POST", "open.test", "/", twoMB, true, "", "")
			h.wantDo("raised limit", 200, "POST", "big.test", "/", twoMB, false, "", "")
			h.wantDo("raised limit, chunked", 200, "POST", "big.test", "/", twoMB, true, "", "")
			h.wantDo("no limit", 200, "POST", "nolimit.test", "/", twoMB, true, "", "")

			// portico.timeout.
			h.wantDo("answer within the timeout", 200, "GET", "slow.test", "/wait?ms=200", nil, false, "", "")
			h.wantDo("answer after the timeout", 504, "GET", "slow.test", "/wait?ms=2500", nil, false, "", "")
			h.wantDo("default timeout elsewhere", 200, "GET", "open.test", "/wait?ms=2500", nil, false, "", "")

			// portico.rate: 1r/m with a burst of 2 serves 3 at once, then
			// 429; another route with the same rate counts apart.
			var codes []int
			for range 4 {
				c, _ := h.do("GET", "rate.test", "/", nil, false, "", "")
				codes = append(codes, c)
			}
			if fmt.Sprint(codes) != "[200 200 200 429]" {
				t.Errorf("rate.test codes %v, want [200 200 200 429]", codes)
			}
			h.wantDo("another route's bucket", 200, "GET", "rate2.test", "/", nil, false, "", "")
			h.wantDo("no rate elsewhere", 200, "GET", "open.test", "/", nil, false, "", "")
			if dyn && h.stage.Reloads() != 0 {
				t.Errorf("dynamic path reloaded %d times", h.stage.Reloads())
			}
			if !strings.Contains(strings.Join(h.log.lines, ""), "md5") {
				t.Errorf("the refused MD5 file was not logged")
			}
		})
	}
}
