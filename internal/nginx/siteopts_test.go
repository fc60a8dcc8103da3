package nginx

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// The per-site redirect and header options (package siteopts) on real
// nginx, on both paths: each option does what docs/labels.md says, a
// route's options never reach another route (plain, wildcard, exact name
// under a wildcard, default route), and on the dynamic path no container
// with options causes a reload.

// siteEcho answers with the request's headers, one "Name: value" a
// line, and sends X-Upstream and Cache-Control itself; on /own it also
// sends its own X-Frame-Options.
func siteEcho(t testing.TB) int {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", "up")
		w.Header().Set("Cache-Control", "public")
		if r.URL.Path == "/own" {
			w.Header().Set("X-Frame-Options", "DENY")
		}
		var lines []string
		for k, vs := range r.Header {
			for _, v := range vs {
				lines = append(lines, k+": "+v)
			}
		}
		slices.Sort(lines)
		fmt.Fprintf(w, "echo %s\n%s\n", r.Host, strings.Join(lines, "\n"))
	}))
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(p)
	return port
}

type siteResp struct {
	code   int
	header http.Header
	body   string
}

// siteDo sends one request through nginx's HTTP listener.
func (h *harness) siteDo(method, host, target string, hdr map[string]string) (siteResp, error) {
	req, err := http.NewRequest(method, "http://"+h.http+target, strings.NewReader(""))
	if err != nil {
		return siteResp{}, err
	}
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		return siteResp{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return siteResp{resp.StatusCode, resp.Header, string(b)}, nil
}

// siteWant polls until the request's answer passes check.
func (h *harness) siteWant(what, method, host, target string, hdr map[string]string, check func(siteResp) error) {
	h.t.Helper()
	h.eventually(what, func() error {
		r, err := h.siteDo(method, host, target, hdr)
		if err != nil {
			return err
		}
		if err := check(r); err != nil {
			return fmt.Errorf("%w (got %d %v %q)", err, r.code, r.header, r.body)
		}
		return nil
	})
}

func redirectTo(code int, loc string) func(siteResp) error {
	return func(r siteResp) error {
		if r.code != code || r.header.Get("Location") != loc {
			return fmt.Errorf("want %d to %q", code, loc)
		}
		return nil
	}
}

// putStopped stores a container that claims its vhosts but has no live
// address: a redirect must still answer.
func (h *harness) putStopped(id string, labels map[string]string) {
	h.t.Helper()
	c := store.Container{ID: id, Name: "c-" + id, Host: "node1", State: "exited", Labels: labels}
	if _, err := store.PutJSON(context.Background(), h.etcd.Client, h.keys.Container("node1", id), c); err != nil {
		h.t.Fatal(err)
	}
}

func siteBothPaths(t *testing.T, f func(t *testing.T, h *harness, dynamic bool)) {
	for _, dynamic := range []bool{true, false} {
		name := "static"
		if dynamic {
			name = "dynamic"
		}
		t.Run(name, func(t *testing.T) {
			h := startStage(t, false, func(c *Config) { c.Dynamic = dynamic })
			f(t, h, dynamic)
		})
	}
}

func TestSiteRedirectTo(t *testing.T) {
	siteBothPaths(t, func(t *testing.T, h *harness, dynamic bool) {
		// No live container: the redirect needs no upstream.
		h.putStopped("r1", map[string]string{routing.LabelVhost: "old.test", routing.LabelRedirectTo: "https://new.example/base/",
			routing.LabelRedirectKeepPath: "true", routing.LabelRedirectCode: "308"})
		h.siteWant("old.test keeps the path", "GET", "old.test", "/x/y?q=1&r=%24x", nil, redirectTo(308, "https://new.example/base/x/y?q=1&r=%24x"))
		reloads := h.stage.Reloads()
		up := siteEcho(t)
		h.putContainer("r2", up, map[string]string{routing.LabelVhost: "moved.test", routing.LabelRedirectTo: "https://new.example/landing?from=moved"})
		h.siteWant("moved.test: 301, path not kept", "POST", "moved.test", "/deep/path", nil, redirectTo(301, "https://new.example/landing?from=moved"))
		for _, code := range []string{"302", "307"} {
			h.putContainer("r3", up, map[string]string{routing.LabelVhost: "temp.test", routing.LabelRedirectTo: "http://[fd00::1]:8080/", routing.LabelRedirectCode: code})
			n, _ := strconv.Atoi(code)
			h.siteWant("temp.test "+code, "GET", "temp.test", "/a", nil, redirectTo(n, "http://[fd00::1]:8080/"))
		}
		if dynamic {
			if got := h.stage.Reloads(); got != reloads {
				t.Errorf("reloads %d -> %d for containers with redirect options; want none", reloads, got)
			}
		}
	})
}

func TestSiteRedirectFrom(t *testing.T) {
	siteBothPaths(t, func(t *testing.T, h *harness, dynamic bool) {
		up := siteEcho(t)
		h.putContainer("a1", up, map[string]string{routing.LabelVhost: "apex.test", routing.LabelRedirectFrom: "www.apex.test, old-apex.test"})
		h.siteWant("www -> apex", "GET", "www.apex.test", "/p?q=1", nil, redirectTo(301, "http://apex.test/p?q=1"))
		reloads := h.stage.Reloads()
		h.siteWant("HEAD -> 301", "HEAD", "old-apex.test", "/", nil, redirectTo(301, "http://apex.test/"))
		h.siteWant("POST -> 308", "POST", "www.apex.test", "/form", nil, redirectTo(308, "http://apex.test/form"))
		h.siteWant("port kept", "GET", "www.apex.test:8080", "/p", nil, redirectTo(301, "http://apex.test:8080/p"))
		h.siteWant("apex served", "GET", "apex.test", "/", nil, func(r siteResp) error {
			if r.code != 200 || !strings.HasPrefix(r.body, "echo apex.test") {
				return fmt.Errorf("want the upstream")
			}
			return nil
		})
		// The reverse, on another container: apex -> www.
		h.putContainer("b1", up, map[string]string{routing.LabelVhost: "www.rev.test", routing.LabelRedirectFrom: "rev.test"})
		h.siteWant("apex -> www", "GET", "rev.test", "/x", nil, redirectTo(301, "http://www.rev.test/x"))
		// A later container cannot take a redirect name as its vhost.
		h.putContainer("c1", up, map[string]string{routing.LabelVhost: "www.apex.test"})
		h.siteWant("first claimant keeps www", "GET", "www.apex.test", "/p", nil, redirectTo(301, "http://apex.test/p"))
		if dynamic {
			if got := h.stage.Reloads(); got != reloads {
				t.Errorf("reloads %d -> %d for containers with redirect-from; want none", reloads, got)
			}
		}
	})
}

func hasHeader(name, value string) func(siteResp) error {
	return func(r siteResp) error {
		if got := r.header.Values(name); len(got) != 1 || got[0] != value {
			return fmt.Errorf("want one %s: %q", name, value)
		}
		return nil
	}
}

func allOf(checks ...func(siteResp) error) func(siteResp) error {
	return func(r siteResp) error {
		for _, c := range checks {
			if err := c(r); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestSiteSecurityHeaders(t *testing.T) {
	siteBothPaths(t, func(t *testing.T, h *harness, dynamic bool) {
		up := siteEcho(t)
		h.putContainer("s1", up, map[string]string{routing.LabelVhost: "sec.test", routing.LabelSecurityHeaders: "true"})
		preset := allOf(hasHeader("X-Content-Type-Options", "nosniff"), hasHeader("Referrer-Policy", "strict-origin-when-cross-origin"))
		h.siteWant("preset", "GET", "sec.test", "/", nil, allOf(preset, hasHeader("X-Frame-Options", "SAMEORIGIN"), hasHeader("X-Upstream", "up")))
		h.siteWant("the upstream's own X-Frame-Options kept", "GET", "sec.test", "/own", nil, allOf(preset, hasHeader("X-Frame-Options", "DENY")))
		reloads := h.stage.Reloads()
		// Also on Portico's own answer: no live replica.
		h.putStopped("s2", map[string]string{routing.LabelVhost: "sec-down.test", routing.LabelSecurityHeaders: "true"})
		h.siteWant("preset on 503", "GET", "sec-down.test", "/", nil, allOf(preset, func(r siteResp) error {
			if r.code != 503 {
				return fmt.Errorf("want 503")
			}
			return nil
		}))
		if dynamic {
			if got := h.stage.Reloads(); got != reloads {
				t.Errorf("reloads %d -> %d; want none", reloads, got)
			}
		}
	})
}

func TestSiteCustomHeaders(t *testing.T) {
	siteBothPaths(t, func(t *testing.T, h *harness, dynamic bool) {
		up := siteEcho(t)
		literal := `a "$host" \ {b}; $1 ${x}`
		h.putContainer("h1", up, map[string]string{routing.LabelVhost: "hdr.test",
			routing.LabelResponseHeader + "X-Custom": literal, routing.LabelResponseHeader + "X-Upstream": "",
			routing.LabelResponseHeader + "Cache-Control": "no-store",
			routing.LabelRequestHeader + "X-Mode":         "$remote_addr", routing.LabelRequestHeader + "X-Drop": ""})
		h.siteWant("headers", "GET", "hdr.test", "/", map[string]string{"X-Drop": "secret", "X-Mode": "client"}, func(r siteResp) error {
			if err := allOf(hasHeader("X-Custom", literal), hasHeader("Cache-Control", "no-store"))(r); err != nil {
				return err
			}
			if r.header.Get("X-Upstream") != "" {
				return fmt.Errorf("X-Upstream not removed")
			}
			if !strings.Contains(r.body, "\nX-Mode: $remote_addr\n") || strings.Contains(r.body, "X-Drop") || strings.Contains(r.body, "X-Mode: client") {
				return fmt.Errorf("request headers not set literally")
			}
			return nil
		})
		if dynamic {
			reloads := h.stage.Reloads()
			h.putContainer("h2", up, map[string]string{routing.LabelVhost: "hdr2.test", routing.LabelResponseHeader + "X-Other": "1"})
			h.siteWant("second", "GET", "hdr2.test", "/", nil, hasHeader("X-Other", "1"))
			if got := h.stage.Reloads(); got != reloads {
				t.Errorf("reloads %d -> %d; want none", reloads, got)
			}
		}
	})
}

// TestSiteOptionsStayOnTheirRoute: options on a wildcard route, a plain
// route and a redirecting route never show on an exact name under the
// wildcard, another route or the default route.
func TestSiteOptionsStayOnTheirRoute(t *testing.T) {
	siteBothPaths(t, func(t *testing.T, h *harness, dynamic bool) {
		up := siteEcho(t)
		opts := map[string]string{routing.LabelSecurityHeaders: "true", routing.LabelResponseHeader + "X-Site": "wild",
			routing.LabelRequestHeader + "X-Req": "wild"}
		wild := map[string]string{routing.LabelVhost: "*.wild.test"}
		for k, v := range opts {
			wild[k] = v
		}
		h.putContainer("w1", up, wild)
		h.putContainer("w2", up, map[string]string{routing.LabelVhost: "exact.wild.test"})
		h.putContainer("d1", up, map[string]string{routing.LabelVhost: "fallback.test", routing.LabelDefault: "true"})
		h.putContainer("p1", up, map[string]string{routing.LabelVhost: "plain.test"})
		h.putContainer("r1", up, map[string]string{routing.LabelVhost: "red.test", routing.LabelRedirectTo: "https://elsewhere.example/"})
		h.siteWant("wildcard has its options", "GET", "a.wild.test", "/", nil, allOf(hasHeader("X-Site", "wild"), hasHeader("X-Frame-Options", "SAMEORIGIN"),
			func(r siteResp) error {
				if !strings.Contains(r.body, "\nX-Req: wild\n") {
					return fmt.Errorf("no X-Req")
				}
				return nil
			}))
		for _, host := range []string{"exact.wild.test", "plain.test", "fallback.test", "unknown.test", "wild.test"} {
			h.siteWant(host+" has none", "GET", host, "/", nil, func(r siteResp) error {
				if r.code != 200 || !strings.HasPrefix(r.body, "echo "+host) {
					return fmt.Errorf("want the upstream")
				}
				for _, n := range []string{"X-Site", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "Location"} {
					if r.header.Get(n) != "" {
						return fmt.Errorf("%s leaked", n)
					}
				}
				if strings.Contains(r.body, "X-Req") {
					return fmt.Errorf("X-Req leaked")
				}
				return nil
			})
		}
	})
}
