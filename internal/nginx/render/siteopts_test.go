package render

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/siteopts"
	"github.com/portico/portico/internal/store"
)

// siteGoldenCases are the per-site redirect and header options on the
// static path, beside a route without options that must not change.
func siteGoldenCases() map[string]Input {
	tls := Settings{HTTPAddrs: []string{":80"}, HTTPSAddrs: []string{":443"}, NginxVersion: "1.22.1"}
	certs := []CertRef{fakeCert("example.com", "www.example.com", "old.example.com")}
	plain := route("plain.example.net", "10.0.0.9:80")
	return map[string]Input{
		"site_redirect": {Routes: []routing.Route{
			with(route("example.com", "10.0.0.2:80"), func(r *routing.Route) {
				r.Site.Redirect.From = []string{"www.example.com"}
			}),
			with(route("www.example.com"), func(r *routing.Route) { r.Site.Redirect.Host = "example.com" }),
			with(route("old.example.com"), func(r *routing.Route) {
				r.Site.Redirect = siteopts.Redirect{To: "https://new.example/", Code: 308, KeepPath: true}
			}),
			with(route("moved.example.net", "10.0.0.3:80"), func(r *routing.Route) {
				r.Site.Redirect = siteopts.Redirect{To: "https://new.example/landing?from=moved"}
			}),
			plain,
		}, Certs: certs, Settings: tls},
		"site_headers": {Routes: []routing.Route{
			with(route("example.com", "10.0.0.2:80"), func(r *routing.Route) {
				r.Site.Headers = siteopts.Headers{Security: true,
					Response: []siteopts.Header{hdr("Cache-Control", "no-store"), hdr("X-Frame-Options", "DENY"), hdr("X-Literal", `a "$host" \ {b};`), hdr("X-Powered-By", "")},
					Request:  []siteopts.Header{hdr("X-Auth-Mode", "$remote_addr"), hdr("X-Debug", "")}}
			}),
			with(route("g.example.com", "10.0.0.4:50051"), func(r *routing.Route) {
				r.Protocol = routing.ProtoGRPC
				r.Site.Headers = siteopts.Headers{Request: []siteopts.Header{hdr("X-Tenant", "t1")}}
			}),
			plain,
		}, Certs: certs, Settings: tls},
	}
}

func TestSiteOptionsGolden(t *testing.T) {
	for name, in := range siteGoldenCases() {
		t.Run(name, func(t *testing.T) {
			got, err := Render(in)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join("testdata", "golden", name+".conf")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if string(got) != string(want) {
				t.Errorf("render differs from %s (go test -run TestSiteOptionsGolden -update to accept):\n%s", file, got)
			}
			// The plain route's block is the one it has without any
			// other route having options.
			alone, err := Render(Input{Routes: []routing.Route{route("plain.example.net", "10.0.0.9:80")}, Certs: in.Certs, Settings: in.Settings})
			if err != nil {
				t.Fatal(err)
			}
			if b := serverBlock(string(alone), "plain.example.net"); b == "" || b != serverBlock(string(got), "plain.example.net") {
				t.Errorf("plain route's block changed beside routes with options:\n%s\n---\n%s", serverBlock(string(got), "plain.example.net"), b)
			}
			if out, err := nginxTestConf(t, got); err != nil {
				t.Errorf("nginx -t: %v\n%s\n%s", err, out, got)
			}
		})
	}
}

// serverBlock is the text of the server block whose server_name is host.
func serverBlock(conf, host string) string {
	i := strings.Index(conf, "    server_name "+host+";")
	if i < 0 {
		return ""
	}
	start := strings.LastIndex(conf[:i], "server {")
	end := strings.Index(conf[i:], "\n}\n")
	if start < 0 || end < 0 {
		return ""
	}
	return conf[start : i+end]
}

func TestNginxValue(t *testing.T) {
	for in, want := range map[string]string{
		"plain":       "plain",
		`a"b`:         `a\"b`,
		`a\b`:         `a\\b`,
		"$host":       "${portico_dollar}host",
		"${x}":        "${portico_dollar}{x}",
		`\"$`:         `\\\"${portico_dollar}`,
		"a; b {c} #d": "a; b {c} #d",
	} {
		if got := nginxValue(in); got != want {
			t.Errorf("nginxValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func hdr(name, value string) siteopts.Header { return siteopts.Header{Name: name, Value: value} }

// FuzzRenderSiteOptions: whatever the redirect and header labels say,
// routing.Build plus Render either drops the container or produces a
// config nginx -t accepts (FuzzRenderAccepted's invariant, for these
// labels).
//
//	go test ./internal/nginx/render -run '^$' -fuzz FuzzRenderSiteOptions -fuzztime 60s
func FuzzRenderSiteOptions(f *testing.F) {
	good := []string{"https://new.example/a", "308", "true", "www.example.com", "true", "X-A", `v "$x" \`, "X-B", "$host"}
	f.Add(good[0], good[1], good[2], good[3], good[4], good[5], good[6], good[7], good[8])
	f.Add("", "", "", "www.example.com, old.example.com", "false", "Cache-Control", "", "X-Tenant", "a;b{c}#d")
	// Hostile values where they could reach the config: the URL, the
	// redirect names, a header name and a header value.
	for _, h := range hostileSeeds(f) {
		for _, i := range []int{0, 3, 5, 6} {
			v := append([]string(nil), good...)
			v[i] = h
			f.Add(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8])
		}
	}
	cert, err := writeBundle(f.TempDir(), selfSigned(f, 1, "fixed.test"))
	if err != nil {
		f.Fatal(err)
	}
	var mu sync.Mutex
	accepted := map[string]bool{}
	f.Fuzz(func(t *testing.T, to, code, keep, from, sec, respName, respValue, reqName, reqValue string) {
		labels := map[string]string{routing.LabelVhost: "app.example.com"}
		for k, v := range map[string]string{routing.LabelRedirectTo: to, routing.LabelRedirectCode: code, routing.LabelRedirectKeepPath: keep,
			routing.LabelRedirectFrom: from, routing.LabelSecurityHeaders: sec} {
			if v != "" {
				labels[k] = v
			}
		}
		labels[routing.LabelResponseHeader+respName] = respValue
		labels[routing.LabelRequestHeader+reqName] = reqValue
		cs := []store.Container{{ID: "f1", Name: "fuzzed", Host: "n1", State: "running", Labels: labels,
			Networks: map[string]store.Network{"bridge": {IPv4: "10.0.0.2"}}}}
		res := routing.Build(cs, routing.Options{Network: "bridge"})
		cert := cert
		cert.Names = nil
		for _, r := range res.Routes {
			cert.Names = append(cert.Names, r.Host)
		}
		conf, err := Render(Input{Routes: res.Routes, Certs: []CertRef{cert},
			Settings: Settings{HTTPAddrs: []string{":80"}, HTTPSAddrs: []string{":443"}, NginxVersion: "1.22.1"}})
		if err != nil {
			t.Fatalf("routing.Build gave routes Render refuses: %v\nroutes: %+v", err, res.Routes)
		}
		tab, _, err := DynamicTable(res.Routes, nil, Settings{}, t.TempDir())
		if err != nil {
			t.Fatalf("dynamic table: %v", err)
		}
		if _, _, err := tab.Encode(); err != nil {
			t.Fatalf("dynamic table refuses accepted routes: %v", err)
		}
		h := hash(conf)
		mu.Lock()
		ok := accepted[h]
		mu.Unlock()
		if ok {
			return
		}
		if out, err := nginxTestConf(t, conf); err != nil {
			t.Fatalf("nginx -t refused the config: %v\n%s\n%s", err, out, conf)
		}
		mu.Lock()
		accepted[h] = true
		mu.Unlock()
	})
}
