package render

import (
	"reflect"
	"testing"

	"github.com/portico/portico/internal/nginx/dynamic"
	"github.com/portico/portico/internal/routing"
)

// DynamicTable decides TLS, redirects and HSTS as Render does.
func TestDynamicTable(t *testing.T) {
	acme := CertRef{Primary: "a.test", Names: []string{"a.test", "www.a.test"}, FullChain: "A-CHAIN", Key: "A-KEY"}
	local := CertRef{Primary: "l.test", Names: []string{"l.test"}, FullChain: "L-CHAIN", Key: "L-KEY", Local: true}
	wild := CertRef{Primary: "*.w.test", Names: []string{"*.w.test"}, FullChain: "W-CHAIN", Key: "W-KEY"}
	refs := []CertRef{acme, local, wild}
	routes := []routing.Route{
		{Host: "a.test", HSTS: routing.HSTS{MaxAge: 60}, Upstreams: []string{"10.0.0.2:80", "10.0.0.1:80", "10.0.0.2:80"}},
		{Host: "www.a.test", HTTPS: routing.HTTPSBoth, Upstreams: []string{"10.0.0.3:80"}},
		{Host: "l.test", Upstreams: []string{"10.0.0.4:80"}, Default: true},
		{Host: "x.w.test", Protocol: routing.ProtoGRPC, HTTPS: routing.HTTPSRedirect},
		{Host: "off.a.test", HTTPS: routing.HTTPSOff, HSTS: routing.HSTS{MaxAge: 60}},
		{Host: "plain.test", HSTS: routing.HSTS{MaxAge: 60}, Default: true},
	}
	dir := "/data/nginx/certs"
	st := Settings{HTTPSAddrs: []string{"127.0.0.1:8443"}}
	tab, certs, err := DynamicTable(routes, refs, st, dir)
	if err != nil {
		t.Fatal(err)
	}
	aID, lID, wID := dynamic.CertID("A-CHAIN", "A-KEY"), dynamic.CertID("L-CHAIN", "L-KEY"), dynamic.CertID("W-CHAIN", "W-KEY")
	want := []dynamic.Route{
		{Host: "a.test", Scheme: "http", Redirect: true, HSTS: 60, Cert: aID, Peers: []string{"10.0.0.1:80", "10.0.0.2:80"}},
		{Host: "l.test", Scheme: "http", Cert: lID, Peers: []string{"10.0.0.4:80"}}, // local CA, auto: no redirect
		{Host: "off.a.test", Scheme: "http"}, // no TLS, so no HSTS
		{Host: "plain.test", Scheme: "http"}, // no certificate
		{Host: "www.a.test", Scheme: "http", Cert: aID, Peers: []string{"10.0.0.3:80"}},
		{Host: "x.w.test", Scheme: "grpc", Redirect: true, Cert: wID},
	}
	if !reflect.DeepEqual(tab.Routes, want) {
		t.Errorf("routes:\n%+v\nwant\n%+v", tab.Routes, want)
	}
	if tab.Default != "l.test" || tab.RedirectPort != ":8443" {
		t.Errorf("default %q, redirect port %q", tab.Default, tab.RedirectPort)
	}
	if len(certs) != 3 {
		t.Fatalf("%d certificates, want 3 (one per id)", len(certs))
	}
	for _, c := range certs {
		if c.ID == aID && (c.FullChainFile != dir+"/a.test/fullchain.pem" || c.KeyFile != dir+"/a.test/privkey.pem") {
			t.Errorf("a.test files: %+v", c)
		}
		if c.ID == wID && c.FullChainFile != dir+"/_wildcard_.w.test/fullchain.pem" {
			t.Errorf("wildcard files: %+v", c)
		}
	}

	// Without HTTPS addresses nothing is TLS, whatever certificates exist.
	tab, certs, err = DynamicTable(routes, refs, Settings{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range tab.Routes {
		if r.Cert != "" || r.Redirect || r.HSTS != 0 || r.HSTSIncludeSubDomains || r.HSTSPreload {
			t.Errorf("no HTTPS: %+v", r)
		}
	}
	if len(certs) != 0 || tab.RedirectPort != "" {
		t.Errorf("no HTTPS: %d certificates, redirect port %q", len(certs), tab.RedirectPort)
	}
}

// DynamicTable gives each path prefix its own entry and lists them on the
// host's, longest first; a host without paths gets no path option.
func TestDynamicTablePaths(t *testing.T) {
	routes := []routing.Route{
		{Host: "a.test", Upstreams: []string{"10.0.0.2:80"}, Paths: []routing.PathRoute{
			{Path: "/api/v2/", Strip: true, Protocol: routing.ProtoHTTP, Upstreams: []string{"10.0.0.4:80", "10.0.0.3:80"}},
			{Path: "/app1/", Dest: "/", Protocol: routing.ProtoGRPC},
		}},
		{Host: "b.test", NoRoot: true, Paths: []routing.PathRoute{{Path: "/only", Upstreams: []string{"10.0.0.5:80"}}}},
		{Host: "c.test", Dest: "/site/", Upstreams: []string{"10.0.0.6:80"}},
		{Host: "d.test", Upstreams: []string{"10.0.0.7:80"}},
	}
	tab, _, err := DynamicTable(routes, nil, Settings{}, "/certs")
	if err != nil {
		t.Fatal(err)
	}
	o := func(n, v string) dynamic.Option { return dynamic.Option{Name: n, Value: v} }
	want := []dynamic.Route{
		{Host: "a.test", Scheme: "http", Peers: []string{"10.0.0.2:80"}, Options: []dynamic.Option{o(dynamic.OptionPathList, "/api/v2/ /app1/")}},
		{Host: "a.test", Path: "/api/v2/", Scheme: "http", Peers: []string{"10.0.0.3:80", "10.0.0.4:80"}, Options: []dynamic.Option{o(dynamic.OptionPathStrip, "1")}},
		{Host: "a.test", Path: "/app1/", Scheme: "grpc", Peers: []string{}, Options: []dynamic.Option{o(dynamic.OptionPathDest, "/")}},
		{Host: "b.test", Scheme: "http", Options: []dynamic.Option{o(dynamic.OptionPathList, "/only"), o(dynamic.OptionPathNoRoot, "1")}},
		{Host: "b.test", Path: "/only", Scheme: "http", Peers: []string{"10.0.0.5:80"}},
		{Host: "c.test", Scheme: "http", Peers: []string{"10.0.0.6:80"}, Options: []dynamic.Option{o(dynamic.OptionPathList, ""), o(dynamic.OptionPathDest, "/site/")}},
		{Host: "d.test", Scheme: "http", Peers: []string{"10.0.0.7:80"}},
	}
	if !reflect.DeepEqual(tab.Routes, want) {
		t.Errorf("routes\n got %+v\nwant %+v", tab.Routes, want)
	}
	if _, _, err := tab.Encode(); err != nil {
		t.Errorf("Encode: %v", err)
	}
}
