package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/testenv/dockertest"
)

// getPath sends GET http://addr<path> with Host host, following no
// redirect: the status and the body, or the Location of a redirect.
func getPath(addr, host, path string) (int, string, error) {
	req, err := http.NewRequest("GET", "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	c := &http.Client{Timeout: 3 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
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

// TestPathsEndToEnd: real containers on one vhost under different path
// prefixes, through `portico run` on both nginx paths. The root container
// and the /api container are not replicas: the longest prefix wins;
// portico.strip-path and nginx-proxy's VIRTUAL_PATH/VIRTUAL_DEST rewrite
// the path the container sees; on the dynamic path a new path container
// goes live without a reload.
func TestPathsEndToEnd(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"on", "off"} {
		t.Run("dynamic-"+mode, func(t *testing.T) {
			d := dockertest.New(t)
			net := d.Network(t, "paths")
			p := startRun(t, d, net, "--nginx-dynamic", mode)
			reloads := func() float64 {
				t.Helper()
				v, err := metric(p.metrics, "portico_nginx_reloads_total")
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			host := "paths-" + d.RunID + ".test"
			d.Run(t, dockertest.RunOptions{Name: "root", Network: net, Labels: map[string]string{"portico.vhost": host}})
			d.Run(t, dockertest.RunOptions{Name: "api", Network: net, Labels: map[string]string{"portico.vhost": host, "portico.path": "/api"}})
			d.Run(t, dockertest.RunOptions{Name: "strip", Network: net,
				Labels: map[string]string{"portico.vhost": host, "portico.path": "/api/v2/", "portico.strip-path": "true"}})
			d.Run(t, dockertest.RunOptions{Name: "app1", Network: net,
				Env: []string{"VIRTUAL_HOST=" + host, "VIRTUAL_PATH=/app1/", "VIRTUAL_DEST=/"}})

			check := func(path string, code int, want string) {
				t.Helper()
				eventually(t, 20*time.Second, fmt.Sprintf("%s%s -> %d %q", host, path, code, want), func() error {
					c, b, err := getPath(p.http, host, path)
					if err != nil {
						return err
					}
					if c != code || !strings.Contains(b, want) {
						return fmt.Errorf("got %d %q", c, b)
					}
					return nil
				})
			}
			body := func(name, path string) string {
				return "name=" + d.Name(name) + " host=" + host + " path=" + path + "\n"
			}
			check("/", 200, body("root", "/"))
			check("/other/x", 200, body("root", "/other/x"))
			check("/api", 200, body("api", "/api"))
			check("/api/users", 200, body("api", "/api/users"))
			check("/apix", 200, body("api", "/apix")) // a string prefix, as nginx and Traefik
			check("/api/v2/users", 200, body("strip", "/users"))
			check("/api/v2", 301, "/api/v2/")
			check("/app1/foo", 200, body("app1", "/foo"))
			// Replicas are containers with the same vhost and path: the
			// root answers every time, never the /api container.
			for range 10 {
				check("/", 200, body("root", "/"))
			}

			base := reloads()
			d.Run(t, dockertest.RunOptions{Name: "late", Network: net,
				Labels: map[string]string{"portico.vhost": host, "portico.path": "/late/", "portico.strip-path": "true"}})
			check("/late/x", 200, body("late", "/x"))
			check("/", 200, body("root", "/"))
			if got := reloads(); mode == "on" && got != base {
				t.Errorf("nginx reloaded %v times for a new path container on the dynamic path; want none", got-base)
			}
		})
	}
}
