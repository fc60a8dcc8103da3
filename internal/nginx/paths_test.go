package nginx

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/portico/portico/internal/pathprefix"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// uriServer answers "<name> uri=<request URI>".
func uriServer(t testing.TB, name string) int {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s uri=%s", name, r.RequestURI)
	}))
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(p)
	return port
}

// getPath asks nginx's HTTP address for path with the given Host: the
// status and the body, or the Location of a redirect.
func (h *harness) getPath(host, path string) (int, string, error) {
	req, err := http.NewRequest("GET", "http://"+h.http+path, nil)
	if err != nil {
		return 0, "", err
	}
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

// TestPaths: containers serving path prefixes of one vhost, on both nginx
// paths, against what package pathprefix says: the longest prefix wins
// ("/api" also takes "/apix", as nginx, nginx-proxy and Traefik do),
// strip-path and VIRTUAL_DEST rewrite the path sent upstream, a prefix
// ending in "/" redirects the path without it, and a vhost nobody serves
// "/" of answers 404 elsewhere. On the dynamic path a new path container
// goes live without a reload.
func TestPaths(t *testing.T) {
	bothPaths(t, func(t *testing.T, dynamic bool) {
		h := startStage(t, false, withDynamic(dynamic))
		ports := map[string]int{}
		for _, n := range []string{"ROOT", "API", "V2", "APP1", "ONLY", "LATE"} {
			ports[n] = uriServer(t, n)
		}
		h.putContainer("root", ports["ROOT"], map[string]string{routing.LabelVhost: "p.test"})
		h.putContainer("api", ports["API"], map[string]string{routing.LabelVhost: "p.test", routing.LabelPath: "/api"})
		h.putContainer("v2", ports["V2"], map[string]string{routing.LabelVhost: "p.test", routing.LabelPath: "/api/v2/", routing.LabelStripPath: "true"})
		h.putContainer("only", ports["ONLY"], map[string]string{routing.LabelVhost: "only.test", routing.LabelPath: "/only"})
		app1 := store.Container{ID: "app1", Name: "c-app1", Host: "node1", State: "running",
			Labels:   map[string]string{routing.LabelPort: strconv.Itoa(ports["APP1"])},
			Env:      map[string]string{routing.EnvVirtualHost: "p.test", routing.EnvVirtualPath: "/app1/", routing.EnvVirtualDest: "/"},
			Networks: map[string]store.Network{"bridge": {IPv4: "127.0.0.1"}}}
		if _, err := store.PutJSON(context.Background(), h.etcd.Client, h.keys.Container("node1", app1.ID), app1); err != nil {
			t.Fatal(err)
		}

		// The reference: pathprefix's Match and Upstream.
		type target struct {
			name, prefix, dest string
			strip              bool
		}
		hosts := map[string][]target{
			"p.test": {{name: "V2", prefix: "/api/v2/", strip: true}, {name: "APP1", prefix: "/app1/", dest: "/"},
				{name: "API", prefix: "/api"}, {name: "ROOT", prefix: "/"}},
			"only.test": {{name: "ONLY", prefix: "/only"}},
		}
		expect := func(host, uri string) (int, string) {
			ts := hosts[host]
			var ps []string
			for _, tg := range ts {
				ps = append(ps, tg.prefix)
			}
			path, query, _ := strings.Cut(uri, "?")
			i, redirect := pathprefix.Match(ps, path)
			switch {
			case redirect:
				return 301, ps[i]
			case i < 0:
				return 404, ""
			}
			up := pathprefix.Upstream(ts[i].prefix, ts[i].strip, ts[i].dest, path)
			if query != "" {
				up += "?" + query
			}
			return 200, ts[i].name + " uri=" + up
		}
		check := func(host, uri string) {
			t.Helper()
			code, want := expect(host, uri)
			h.eventually(fmt.Sprintf("%s%s -> %d %q", host, uri, code, want), func() error {
				c, b, err := h.getPath(host, uri)
				if err != nil {
					return err
				}
				if c != code || (code == 301 && !strings.HasSuffix(b, want)) || (code == 200 && b != want) {
					return fmt.Errorf("got %d %q", c, b)
				}
				return nil
			})
		}
		for _, c := range []struct{ host, uri string }{
			{"p.test", "/"}, {"p.test", "/x?q=1"}, {"p.test", "/api"}, {"p.test", "/apix"}, {"p.test", "/api/x"},
			{"p.test", "/api/v2/users?a=b"}, {"p.test", "/api/v2/"}, {"p.test", "/api/v2"}, {"p.test", "/api/v"},
			{"p.test", "/app1/foo"}, {"p.test", "/app1"}, {"p.test", "/app1/"},
			{"only.test", "/only"}, {"only.test", "/only/x"}, {"only.test", "/"}, {"only.test", "/other"},
		} {
			check(c.host, c.uri)
		}

		// A new path container on a served vhost: live, and on the
		// dynamic path without a reload.
		reloads := h.stage.Reloads()
		h.putContainer("late", ports["LATE"], map[string]string{routing.LabelVhost: "p.test", routing.LabelPath: "/late/", routing.LabelStripPath: "1"})
		hosts["p.test"] = append([]target{{name: "LATE", prefix: "/late/", strip: true}}, hosts["p.test"]...)
		check("p.test", "/late/a/b")
		check("p.test", "/")
		if dynamic {
			if got := h.stage.Reloads(); got != reloads {
				t.Errorf("reloads %d -> %d for a new path container; want none", reloads, got)
			}
		}
		// It goes again: its prefix falls back to the root.
		h.deleteKey(h.keys.Container("node1", "late"))
		hosts["p.test"] = hosts["p.test"][1:]
		check("p.test", "/late/a/b")
	})
}
