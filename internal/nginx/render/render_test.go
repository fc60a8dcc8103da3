package render

import (
	"crypto/sha256"
	"encoding/pem"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/portico/portico/internal/routing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden")

func route(host string, ups ...string) routing.Route {
	return routing.Route{Host: host, Protocol: routing.ProtoHTTP, HTTPS: routing.HTTPSRedirect, Upstreams: ups, Containers: []string{"c-" + host}}
}

func with(r routing.Route, f func(*routing.Route)) routing.Route { f(&r); return r }

func goldenCases() map[string]Input {
	tls := Settings{HTTPAddrs: []string{":80"}, HTTPSAddrs: []string{":443"}, NginxVersion: "1.22.1"}
	certs := []CertRef{fakeCert("a.example.com", "www.example.com"), fakeCert("example.org", "*.example.org")}
	local := fakeCert("example.org", "*.example.org")
	local.Local = true
	long := fakeCert("long.example.net")
	long.FullChain = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte(strings.Repeat("long chain ", 420))})) // 6 KB: two parts
	return map[string]Input{
		"empty": {},
		"paths": {Routes: []routing.Route{
			with(route("a.example.com", "10.0.0.2:80"), func(r *routing.Route) {
				r.Paths = []routing.PathRoute{
					{Path: "/api/v2/", Strip: true, Protocol: routing.ProtoHTTP, Upstreams: []string{"10.0.0.5:8080"}},
					{Path: "/app1/", Dest: "/", Protocol: routing.ProtoHTTP, Upstreams: []string{"10.0.0.4:80", "10.0.0.3:80"}},
					{Path: "/api", Protocol: routing.ProtoHTTP, Upstreams: []string{"10.0.0.6:80"}},
					{Path: "/svc.Greeter/", Protocol: routing.ProtoGRPC, Upstreams: []string{"10.0.0.7:50051"}},
					{Path: "/(x)+*.", Strip: true, Protocol: routing.ProtoHTTPS},
				}
			}),
			with(route("b.example.com"), func(r *routing.Route) {
				r.NoRoot = true
				r.Paths = []routing.PathRoute{{Path: "/only", Protocol: routing.ProtoHTTP, Upstreams: []string{"10.0.0.8:80"}}}
			}),
			with(route("c.example.com", "10.0.0.9:80"), func(r *routing.Route) { r.Dest = "/site/" }),
		}, Certs: certs, Settings: tls},
		"empty_tls": {Settings: tls},
		"single":    {Routes: []routing.Route{route("a.example.com", "172.17.0.2:80")}},
		"replicas": {Routes: []routing.Route{route("a.example.com", "172.17.0.3:8080", "172.17.0.2:8080", "[fd00::2]:8080")},
			Settings: Settings{HTTPAddrs: []string{"0.0.0.0:8080", "[::]:8080"}}},
		"no_live": {Routes: []routing.Route{route("a.example.com"), route("b.example.com", "10.0.0.2:80")}},
		"default_vhost": {Routes: []routing.Route{route("a.example.com", "10.0.0.2:80"), with(route("b.example.com", "10.0.0.3:80"), func(r *routing.Route) { r.Default = true })},
			Settings: Settings{IncludeDir: "/etc/portico/vhost.d"}},
		"wildcard": {Routes: []routing.Route{route("*.example.org", "10.0.0.2:80"), route("x.example.org", "10.0.0.3:80")},
			Certs: certs, Settings: Settings{HTTPSAddrs: []string{":443"}, IncludeDir: "/etc/portico/vhost.d", NginxVersion: "1.22.1"}},
		"fastcgi_uwsgi": {Routes: []routing.Route{with(route("php.example.com", "10.0.0.2:9000"), func(r *routing.Route) { r.Protocol, r.Root = routing.ProtoFastCGI, "/var/www/public" }),
			with(route("py.example.com", "10.0.0.3:3031"), func(r *routing.Route) { r.Protocol = routing.ProtoUWSGI })}},
		// A trailing wildcard is a server_name as written; no certificate
		// covers it, so it is served over plain HTTP only.
		"trailing_wildcard": {Routes: []routing.Route{route("www.example.*", "10.0.0.2:80"), route("www.example.com", "10.0.0.3:80")},
			Certs: certs, Settings: Settings{HTTPSAddrs: []string{":443"}, IncludeDir: "/etc/portico/vhost.d", NginxVersion: "1.22.1"}},
		"tls_redirect": {Routes: []routing.Route{route("a.example.com", "10.0.0.2:80"), route("nocert.example.net", "10.0.0.3:80"),
			with(route("www.example.com", "10.0.0.4:80"), func(r *routing.Route) { r.HTTPS = routing.HTTPSOff })}, Certs: certs, Settings: tls},
		"tls_auto": {Routes: []routing.Route{with(route("a.example.com", "10.0.0.2:80"), func(r *routing.Route) { r.HTTPS = routing.HTTPSAuto }),
			with(route("x.example.org", "10.0.0.3:80"), func(r *routing.Route) { r.HTTPS = routing.HTTPSAuto })},
			Certs: []CertRef{certs[0], local}, Settings: tls},
		"tls_both": {Routes: []routing.Route{with(route("a.example.com", "10.0.0.2:80"), func(r *routing.Route) { r.HTTPS = routing.HTTPSBoth; r.Default = true })},
			Certs: certs, Settings: Settings{HTTPAddrs: []string{"127.0.0.1:8080"}, HTTPSAddrs: []string{"127.0.0.1:8443"}, NginxVersion: "1.22.1"}},
		"hsts": {Routes: []routing.Route{with(route("a.example.com", "10.0.0.2:80"), func(r *routing.Route) { r.HSTS = routing.HSTS{MaxAge: routing.DefaultHSTSMaxAge} }),
			with(route("plain.example.net", "10.0.0.3:80"), func(r *routing.Route) { r.HSTS = routing.HSTS{MaxAge: 600} }),
			with(route("www.example.com", "10.0.0.4:80"), func(r *routing.Route) {
				r.HSTS = routing.HSTS{MaxAge: 86400, IncludeSubDomains: true, Preload: true}
			}),
			with(route("x.example.org", "10.0.0.5:80"), func(r *routing.Route) { r.HSTS = routing.HSTS{MaxAge: 600, Preload: true} })},
			Certs: certs, Settings: tls},
		"grpc": {Routes: []routing.Route{with(route("a.example.com", "10.0.0.2:50051"), func(r *routing.Route) { r.Protocol = routing.ProtoGRPC }),
			with(route("s.example.org", "10.0.0.3:50051"), func(r *routing.Route) { r.Protocol = routing.ProtoGRPCS })}, Certs: certs, Settings: tls},
		"https_upstream": {Routes: []routing.Route{with(route("a.example.com", "10.0.0.2:443"), func(r *routing.Route) { r.Protocol = routing.ProtoHTTPS })}},
		"tls_long_chain": {Routes: []routing.Route{route("long.example.net", "10.0.0.2:80"), route("a.example.com", "10.0.0.3:80"),
			route("default", "10.0.0.4:80")}, Certs: append([]CertRef{long, fakeCert("default")}, certs...), Settings: tls},
		"trusted_proxies": {Routes: []routing.Route{route("a.example.com", "10.0.0.2:80"),
			with(route("g.example.com", "10.0.0.3:50051"), func(r *routing.Route) { r.Protocol = routing.ProtoGRPC })},
			Settings: Settings{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("fd00::/8")}}},
		"limit_conn": {Routes: []routing.Route{route("a.example.com", "10.0.0.2:80"),
			with(route("www.example.com", "10.0.0.3:80"), func(r *routing.Route) { r.HTTPS = routing.HTTPSBoth })},
			Certs: certs, Settings: Settings{HTTPAddrs: []string{":80"}, HTTPSAddrs: []string{":443"}, NginxVersion: "1.22.1", MaxRequestsPerClient: 3}},
		"access_options": accessGolden(),
		"http2_new_style": {Routes: []routing.Route{route("a.example.com", "10.0.0.2:80")}, Certs: certs,
			Settings: Settings{HTTPSAddrs: []string{":443", "[::]:443"}, NginxVersion: "1.25.1"}},
		// HTTP/3: the default TLS server (here the catch-all) alone says
		// reuseport; the HSTS vhost keeps its header beside Alt-Svc.
		"http3": {Routes: []routing.Route{with(route("a.example.com", "10.0.0.2:80"), func(r *routing.Route) { r.HSTS = routing.HSTS{MaxAge: routing.DefaultHSTSMaxAge} }),
			with(route("plain.example.net", "10.0.0.4:80"), func(r *routing.Route) { r.HTTPS = routing.HTTPSOff })},
			Certs: certs, Settings: Settings{HTTPSAddrs: []string{":443", "[::]:443"}, NginxVersion: "1.26.3", HTTP3: true}},
		// HTTP/3 with a default vhost: that vhost holds the reuseport.
		"http3_default": {Routes: []routing.Route{with(route("a.example.com", "10.0.0.2:80"), func(r *routing.Route) { r.Default = true }),
			route("h.example.com", "10.0.0.3:80")},
			Certs: certs, Settings: Settings{HTTPAddrs: []string{"127.0.0.1:8080"}, HTTPSAddrs: []string{"127.0.0.1:8443"}, NginxVersion: "1.26.3", HTTP3: true}},
		// HTTP/3 asked for but no HTTPS address: nothing of it is rendered.
		"http3_no_tls": {Routes: []routing.Route{route("a.example.com", "10.0.0.2:80")}, Settings: Settings{NginxVersion: "1.26.3", HTTP3: true}},
	}
}

// fakeCert is a certificate reference with short stand-in PEM: render
// output stays readable, and nginx -t does not load certificates that are
// chosen per handshake.
func fakeCert(names ...string) CertRef {
	fp := fmt.Sprintf("%x", sha256.Sum256([]byte(names[0])))[:8]
	return CertRef{Primary: names[0], Names: names, Fingerprint: fp,
		FullChain: "-----BEGIN CERTIFICATE-----\nY2VydGlmaWNhdGUgZm9yIGV4YW1wbGU=\n-----END CERTIFICATE-----\n",
		Key:       "-----BEGIN PRIVATE KEY-----\na2V5\n-----END PRIVATE KEY-----\n"}
}

func TestRenderGolden(t *testing.T) {
	for name, in := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			got, err := Render(in)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := Render(in)
			if string(again) != string(got) {
				t.Fatal("render is not deterministic")
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
				t.Errorf("render differs from %s (go test -run TestRenderGolden -update to accept):\n%s", file, got)
			}
			// The installed nginx (1.22) must accept every case written for
			// its version, with the certificate dir pointing at real files.
			if v, _ := parseVersion(in.Settings.NginxVersion); !versionBefore(v, 1, 25, 1) {
				return
			}
			in.Settings.IncludeDir = "" // nginx -t does not bind, so :80/:443 are fine
			conf, err := Render(in)
			if err != nil {
				t.Fatal(err)
			}
			if out, err := nginxTestConf(t, conf); err != nil {
				t.Errorf("nginx -t: %v\n%s\n%s", err, out, conf)
			}
		})
	}
}

func TestRenderRejects(t *testing.T) {
	for name, in := range map[string]Input{
		"bad host":        {Routes: []routing.Route{route("a.example.com;}", "10.0.0.1:80")}},
		"bad upstream":    {Routes: []routing.Route{route("a.example.com", "10.0.0.1:80; include /etc/passwd")}},
		"hostname listen": {Settings: Settings{HTTPAddrs: []string{"localhost:80"}}},
		"dup listen":      {Settings: Settings{HTTPAddrs: []string{":80"}, HTTPSAddrs: []string{"*:80"}}},
		"old nginx tls":   {Settings: Settings{HTTPSAddrs: []string{":443"}, NginxVersion: "1.18.0"}},
		"dup host":        {Routes: []routing.Route{route("a.example.com"), route("a.example.com")}},
		"negative limit":  {Settings: Settings{MaxRequestsPerClient: -1}},
		"limit too big":   {Settings: Settings{MaxRequestsPerClient: 65536}},
	} {
		if _, err := Render(in); err == nil {
			t.Errorf("%s: rendered", name)
		}
	}
	if _, err := Render(Input{Routes: []routing.Route{route("a.example.com;}")}}); err == nil || !strings.Contains(err.Error(), `"a.example.com;}"`) {
		t.Errorf("error does not name the route: %v", err)
	}
}

func TestUpstreamNamesUnique(t *testing.T) {
	hosts := []string{"a-b.c", "a.b-c", "a_b.c", "a.b_c", "*.a.b", "_wildcard_.a.b", "wildcard.a.b"}
	seen := map[string]string{}
	for _, h := range hosts {
		n := upstreamName(h)
		if o, ok := seen[n]; ok {
			t.Errorf("%q and %q share %s", o, h, n)
		}
		seen[n] = h
	}
}

func TestCertFor(t *testing.T) {
	certs := []CertRef{
		{Primary: "wild", Names: []string{"*.example.com"}},
		{Primary: "exact", Names: []string{"a.example.com"}},
		{Primary: "wildname", Names: []string{"*.example.net"}},
	}
	for host, want := range map[string]string{
		"a.example.com":   "exact",
		"b.example.com":   "wild",
		"x.b.example.com": "",
		"example.com":     "",
		"*.example.com":   "wild",
		"*.example.net":   "wildname",
		"*.b.example.net": "",
		"com":             "",
	} {
		c, ok := CertFor(host, certs)
		if c.Primary != want || ok != (want != "") {
			t.Errorf("CertFor(%q) = %q %v, want %q", host, c.Primary, ok, want)
		}
	}
}

func TestListenAddr(t *testing.T) {
	for in, want := range map[string]string{":80": "*:80", "*:80": "*:80", "0.0.0.0:8080": "0.0.0.0:8080", "[::]:443": "[::]:443", "[::1]:8443": "[::1]:8443"} {
		if got, _, err := listenAddr(in); err != nil || got != want {
			t.Errorf("listenAddr(%q) = %q %v", in, got, err)
		}
	}
	for _, in := range []string{"80", ":0", ":65536", "host:80", "[::1]", "::1:80", ":080", "1.2.3.4:80 ssl", "[fe80::1%eth0]:80"} {
		if got, _, err := listenAddr(in); err == nil {
			t.Errorf("listenAddr(%q) = %q, want error", in, got)
		}
	}
}

// Many vhosts are rendered in parallel shares; the output keeps host order.
func TestRenderManyVhostsInOrder(t *testing.T) {
	var in Input
	for i := range 1500 {
		in.Routes = append(in.Routes, route(fmt.Sprintf("h%04d.example.com", 1499-i), "10.0.0.2:80"))
	}
	conf, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, l := range strings.Split(string(conf), "\n") {
		if h, ok := strings.CutPrefix(l, "    server_name "); ok && h != "_;" {
			hosts = append(hosts, strings.TrimSuffix(h, ";"))
		}
	}
	if len(hosts) != 1500 || !slices.IsSorted(hosts) || hosts[0] != "h0000.example.com" {
		t.Fatalf("%d server names, sorted %v, first %q", len(hosts), slices.IsSorted(hosts), hosts[0])
	}
}

// Certificates are written into quoted strings: anything but PEM text is
// refused, naming the certificate.
func TestRenderRejectsNonPEM(t *testing.T) {
	for _, bad := range []string{"not pem", "-----BEGIN CERTIFICATE-----\n\"; }\n", "-----BEGIN CERTIFICATE-----\n$host\n", "-----BEGIN X-----\r\n", "-----BEGIN X-----\\n"} {
		c := fakeCert("a.example.com")
		c.Key = bad
		_, err := Render(Input{Routes: []routing.Route{route("a.example.com", "10.0.0.2:80")}, Certs: []CertRef{c},
			Settings: Settings{HTTPSAddrs: []string{":443"}}})
		if err == nil || !strings.Contains(err.Error(), `"a.example.com"`) {
			t.Errorf("key %q: %v", bad, err)
		}
	}
}
