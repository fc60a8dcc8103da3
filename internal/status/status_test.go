package status

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

func TestBuildAndText(t *testing.T) {
	keys := store.NewKeys("/portico")
	rec := func(c store.Container) []byte {
		b, err := store.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	running := store.Container{ID: "aaaaaaaaaaaaaaaa", Name: "web", Host: "h1", State: "running",
		Labels:   map[string]string{"portico.vhost": "web.test"},
		Networks: map[string]store.Network{"proxy": {IPv4: "172.18.0.2"}}}
	bad := store.Container{ID: "bbbb", Name: "bad", Host: "h1", State: "running",
		Labels:   map[string]string{"portico.vhost": "x.test", "portico.port": "abc"},
		Networks: map[string]store.Network{"proxy": {IPv4: "172.18.0.3"}}}
	nginxStatus, _ := store.Encode(store.NginxStatus{Instance: "n1", Routes: 1, Reloads: 3, Error: "nginx -t: boom", ErrorRoutes: []string{"web.test"}})
	kvs := map[string][]byte{
		keys.Container("h1", running.ID): rec(running),
		keys.Container("h1", bad.ID):     rec(bad),
		keys.Container("h1", "junk"):     []byte("{not json"),
		keys.NginxStatus("n1"):           nginxStatus,
	}
	r := Build(kvs, keys, routing.Options{Network: "proxy"})
	if len(r.Containers) != 2 || len(r.Routes) != 1 || r.Routes[0].Host != "web.test" {
		t.Fatalf("containers %v routes %v", r.Containers, r.Routes)
	}
	if len(r.Store) != 1 || !strings.Contains(r.Store[0], "junk") {
		t.Errorf("store errors %v, want the garbage key named", r.Store)
	}
	// The rejected label, the unreadable record and nginx's failure: the
	// same number the exit code counts.
	if r.Counts["errors"] != 3 || r.Errors() != 3 {
		t.Errorf("counts %v, Errors %d, want 3 errors", r.Counts, r.Errors())
	}
	var out bytes.Buffer
	if err := r.WriteText(&out, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"web.test", "172.18.0.2:80", `container "bad": label portico.port="abc"`, "nginx -t: boom", "UNREADABLE RECORDS", "aaaaaaaaaaaa ", "3 error(s), 0 warning(s)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestStoppingShown: a container being stopped is listed as such, with its
// address not live, and its route has no upstream.
func TestStoppingShown(t *testing.T) {
	keys := store.NewKeys("/portico")
	c := store.Container{ID: "cccccccccccccccc", Name: "web", Host: "h1", State: "running", Stopping: true,
		Labels:   map[string]string{"portico.vhost": "web.test"},
		Networks: map[string]store.Network{"proxy": {IPv4: "172.18.0.2"}}}
	b, err := store.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	r := Build(map[string][]byte{keys.Container("h1", c.ID): b}, keys, routing.Options{Network: "proxy"})
	if len(r.Containers) != 1 || !r.Containers[0].Stopping || r.Containers[0].Live {
		t.Fatalf("containers %+v, want one stopping, not live", r.Containers)
	}
	if len(r.Routes) != 1 || len(r.Routes[0].Upstreams) != 0 {
		t.Fatalf("routes %+v, want web.test without upstreams", r.Routes)
	}
	var out bytes.Buffer
	if err := r.WriteText(&out, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"running (stopping)", "172.18.0.2:80 (not live)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestPathsShown: a vhost's path prefixes are listed under its route, each
// with its rewrite, upstreams and containers.
func TestPathsShown(t *testing.T) {
	keys := store.NewKeys("/portico")
	kvs := map[string][]byte{}
	for _, c := range []store.Container{
		{ID: "aaaaaaaaaaaaaaaa", Name: "root", Host: "h1", State: "running", Labels: map[string]string{"portico.vhost": "app.test"},
			Networks: map[string]store.Network{"proxy": {IPv4: "172.18.0.2"}}},
		{ID: "bbbbbbbbbbbbbbbb", Name: "api", Host: "h1", State: "running", Labels: map[string]string{"portico.vhost": "app.test", "portico.path": "/api/", "portico.strip-path": "true"},
			Networks: map[string]store.Network{"proxy": {IPv4: "172.18.0.3"}}},
		{ID: "cccccccccccccccc", Name: "only", Host: "h1", State: "running", Labels: map[string]string{"portico.vhost": "only.test", "portico.path": "/x"},
			Networks: map[string]store.Network{"proxy": {IPv4: "172.18.0.4"}}},
	} {
		b, err := store.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		kvs[keys.Container("h1", c.ID)] = b
	}
	r := Build(kvs, keys, routing.Options{Network: "proxy"})
	var out bytes.Buffer
	if err := r.WriteText(&out, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"path /api/ (strip)", "172.18.0.3:80", "no container serves / (404)", "path /x"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}
}
