package nginx

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// TestRenderVhostIsTheRenderedBlock: the block RenderVhost returns is
// byte for byte the one Render puts in the config, with the same TLS and
// redirect decisions, for every kind of route.
func TestRenderVhostIsTheRenderedBlock(t *testing.T) {
	local := selfSigned(t, 1, "local.test")
	acme := selfSigned(t, 2, "*.example.com", "example.com")
	refs, rejected := render.UsableCerts(map[string]store.CertBundle{"/p/certs/data/local.test": local, "/p/certs/data/*.example.com": acme})
	if len(rejected) > 0 || len(refs) != 2 {
		t.Fatalf("refs %v rejected %v", refs, rejected)
	}
	for i := range refs {
		refs[i].Local = refs[i].Primary == "local.test"
	}
	routes := []routing.Route{
		{Host: "local.test", Protocol: "http", HTTPS: routing.HTTPSAuto, Upstreams: []string{"10.0.0.1:80"}, Default: true},
		{Host: "*.example.com", Protocol: "grpc", HTTPS: routing.HTTPSAuto, HSTS: routing.HSTS{MaxAge: 600}, Upstreams: []string{"10.0.0.2:80", "10.0.0.3:80"}},
		{Host: "off.example.com", Protocol: "http", HTTPS: routing.HTTPSOff, Upstreams: []string{"10.0.0.4:80"}},
		{Host: "dead.test", Protocol: "https", HTTPS: routing.HTTPSRedirect},
	}
	want := map[string][2]bool{"local.test": {true, false}, "*.example.com": {true, true}, "off.example.com": {false, false}, "dead.test": {false, false}}
	for _, version := range []string{"1.22.1", "1.26.0"} {
		in := render.Input{Routes: routes, Certs: refs, Settings: render.Settings{HTTPAddrs: []string{":80"}, HTTPSAddrs: []string{":443"}, NginxVersion: version}}
		full, err := render.Render(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			v, err := render.RenderVhost(in, r.Host)
			if err != nil {
				t.Fatal(err)
			}
			if v.Block == "" || !bytes.Contains(full, []byte(v.Block)) {
				t.Errorf("nginx %s: block of %s is not in the config:\n%s", version, r.Host, v.Block)
			}
			if got := [2]bool{v.TLS, v.Redirect}; got != want[r.Host] {
				t.Errorf("%s: tls, redirect = %v, want %v", r.Host, got, want[r.Host])
			}
			// Alone, the route renders the same block (the default
			// server aside, which only one route can be).
			alone, err := render.RenderVhost(render.Input{Routes: []routing.Route{r}, Certs: refs, Settings: in.Settings}, r.Host)
			if err != nil || alone.Block != v.Block {
				t.Errorf("%s alone: %v\n%s\nwant\n%s", r.Host, err, alone.Block, v.Block)
			}
		}
	}
	if _, err := render.RenderVhost(render.Input{Routes: routes[:1]}, "nope.test"); err == nil {
		t.Error("a host without a route rendered")
	}
}

// TestUsableCertsAgreesWithSync: over the hostile bundle corpus, UsableCerts
// accepts exactly what CertFiles.Sync writes and rejects what it refuses.
func TestUsableCertsAgreesWithSync(t *testing.T) {
	bundles := map[string]store.CertBundle{}
	for name, hb := range hostileBundles(t, "h.test") {
		b := hb.b
		host := strings.NewReplacer(" ", "-", ",", "").Replace(name) + ".test"
		b.Primary, b.Names = host, []string{host}
		bundles["/p/certs/data/"+host] = b
	}
	good := selfSigned(t, 3, "good.test")
	bundles["/p/certs/data/wrong-key.test"] = good // key names another certificate
	refs, rejected := render.UsableCerts(bundles)
	cf := &render.CertFiles{Dir: t.TempDir()}
	synced, errs := cf.Sync(bundles)
	if len(rejected) < 20 || len(refs) < 3 {
		t.Fatalf("corpus: %d usable, %d rejected; want both kinds", len(refs), len(rejected))
	}
	if len(refs) != len(synced) || len(rejected) != len(errs) {
		t.Fatalf("UsableCerts: %d usable, %d rejected; Sync: %d, %d", len(refs), len(rejected), len(synced), len(errs))
	}
	for i := range refs {
		if refs[i].Primary != synced[i].Primary || refs[i].Fingerprint != synced[i].Fingerprint || refs[i].Local != synced[i].Local {
			t.Errorf("ref %d: %+v vs %+v", i, refs[i].Primary, synced[i].Primary)
		}
	}
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	for _, k := range slices.Sorted(maps.Keys(rejected)) {
		if !slices.Contains(msgs, rejected[k].Error()) {
			t.Errorf("rejected %s: %v, which Sync did not say", k, rejected[k])
		}
	}
}

func TestRouteDigests(t *testing.T) {
	r := routing.Route{Host: "a.test", Protocol: "http", HTTPS: "auto", Upstreams: []string{"10.0.0.1:80"}, Containers: []string{"a"}}
	same := r
	same.Containers = []string{"a", "b"} // names are not served
	changed := r
	changed.Upstreams = []string{"10.0.0.2:80"}
	if render.RouteDigest(r) != render.RouteDigest(same) || render.RouteDigest(r) == render.RouteDigest(changed) || len(render.RouteDigest(r)) != 16 {
		t.Errorf("digests %s %s %s", render.RouteDigest(r), render.RouteDigest(same), render.RouteDigest(changed))
	}
	many := make([]routing.Route, render.MaxStatusRoutes+1)
	for i := range many {
		many[i] = routing.Route{Host: fmt.Sprintf("h%d.test", i)}
	}
	if render.RouteDigests(many[:render.MaxStatusRoutes]) == nil || render.RouteDigests(many) != nil {
		t.Error("the cap does not hold")
	}
}

// TestStageRecordsAppliedRoutes: a real stage's status lists the digest of
// each route it applied, and follows a change.
func TestStageRecordsAppliedRoutes(t *testing.T) {
	h := startStage(t, false, nil)
	port := echoServer(t, "A")
	h.putContainer("a1", port, map[string]string{routing.LabelVhost: "app.test"})
	h.want("app.test", 200, "A host=app.test")
	route := routing.Route{Host: "app.test", Protocol: "http", HTTPS: routing.HTTPSAuto, Upstreams: []string{fmt.Sprintf("127.0.0.1:%d", port)}}
	h.eventually("status lists app.test's digest", func() error {
		if got := h.status().AppliedRoutes; got["app.test"] != render.RouteDigest(route) {
			return fmt.Errorf("applied routes %v, want app.test=%s", got, render.RouteDigest(route))
		}
		return nil
	})
	port2 := echoServer(t, "B")
	h.putContainer("a1", port2, map[string]string{routing.LabelVhost: "app.test"})
	route.Upstreams = []string{fmt.Sprintf("127.0.0.1:%d", port2)}
	h.eventually("status follows the change", func() error {
		if got := h.status().AppliedRoutes; got["app.test"] != render.RouteDigest(route) {
			return fmt.Errorf("applied routes %v, want app.test=%s", got, render.RouteDigest(route))
		}
		return nil
	})
}
