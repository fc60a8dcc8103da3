package dockertest_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/portico/portico/internal/testenv/dockertest"
)

// TestBackendServes runs the backend on a fresh network and fetches a page
// from its bridge address: the image, the labels and the cleanup all work.
func TestBackendServes(t *testing.T) {
	env := dockertest.New(t)
	netName := env.Network(t, "sanity")
	id := env.Run(t, dockertest.RunOptions{Name: "web", Network: netName, Env: []string{"PORT=8080"}})
	ip := env.IP(t, id, netName)

	hc := http.Client{Timeout: 2 * time.Second}
	for _, port := range []string{"80", "8080"} {
		url := "http://" + ip + ":" + port + "/x"
		var body string
		dockertest.Poll(t, 10*time.Second, "GET "+url, func() error {
			req, _ := http.NewRequest("GET", url, nil)
			req.Host = "whoami.test"
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			body = string(b)
			return err
		})
		want := "name=" + env.Name("web") + " host=whoami.test path=/x"
		if strings.TrimSpace(body) != want {
			t.Errorf("GET %s = %q, want %q", url, body, want)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := env.Client.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: env.Filter()})
	if err != nil || len(cs.Items) != 1 || cs.Items[0].ID != id {
		t.Errorf("containers with run label = %+v, %v; want just %s", cs.Items, err, id)
	}
}
