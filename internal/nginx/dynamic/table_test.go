package dynamic

import (
	"strings"
	"testing"
)

func TestEncode(t *testing.T) {
	tab := Table{
		RedirectPort: ":8443",
		Default:      "b.test",
		Routes: []Route{
			{Host: "b.test", Scheme: "http", Peers: []string{"10.0.0.2:80", "10.0.0.3:80"}},
			{Host: "*.a.test", Scheme: "grpcs", Redirect: true, HSTS: 300, Cert: "0123456789abcdef0123456789abcdef", Peers: []string{"[fd00::1]:443"}},
			{Host: "down.test", Scheme: "http"},
		},
	}
	body, version, err := tab.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := "portico-routes 1\nversion\t" + version + "\n" +
		"redirect_port\t:8443\n" +
		"default\tb.test\n" +
		"route\t*.a.test\tgrpcs\t1\t300\t0123456789abcdef0123456789abcdef\t[fd00::1]:443\n" +
		"route\tb.test\thttp\t0\t0\t\t10.0.0.2:80 10.0.0.3:80\n" +
		"route\tdown.test\thttp\t0\t0\t\t\n"
	if string(body) != want {
		t.Errorf("body:\n%s\nwant:\n%s", body, want)
	}
	// The same table in another order gives the same bytes.
	tab.Routes[0], tab.Routes[2] = tab.Routes[2], tab.Routes[0]
	again, v2, err := tab.Encode()
	if err != nil || string(again) != string(body) || v2 != version {
		t.Errorf("order changed the encoding: %v", err)
	}
	// Any change of content changes the version.
	tab.Routes[1].HSTS = 301
	if _, v3, _ := tab.Encode(); v3 == version {
		t.Error("a changed route kept the version")
	}
}

// The line format's separators can never come from a field: a value that
// holds one is refused, not written.
func TestEncodeRefusesSeparators(t *testing.T) {
	for name, tab := range map[string]Table{
		"tab in host":      {Routes: []Route{{Host: "a\tb", Scheme: "http"}}},
		"newline in host":  {Routes: []Route{{Host: "a.test\nroute\tevil.test", Scheme: "http"}}},
		"NUL in scheme":    {Routes: []Route{{Host: "a.test", Scheme: "ht\x00tp"}}},
		"space in peer":    {Routes: []Route{{Host: "a.test", Scheme: "http", Peers: []string{"1.2.3.4:80 5.6.7.8:80"}}}},
		"empty peer":       {Routes: []Route{{Host: "a.test", Scheme: "http", Peers: []string{""}}}},
		"newline in cert":  {Routes: []Route{{Host: "a.test", Scheme: "http", Cert: "ab\ncd"}}},
		"newline default":  {Default: "a\nb"},
		"CR redirect port": {RedirectPort: ":1\r"},
		"duplicate host":   {Routes: []Route{{Host: "a.test", Scheme: "http"}, {Host: "a.test", Scheme: "http"}}},
		"no host":          {Routes: []Route{{Scheme: "http"}}},
	} {
		if _, _, err := tab.Encode(); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

func TestStateFile(t *testing.T) {
	body, _, err := Table{Routes: []Route{{Host: "a.test", Scheme: "http"}}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	st, err := StateFile(body, []Cert{{ID: "ab", FullChainFile: "/d/a/fullchain.pem", KeyFile: "/d/a/privkey.pem"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(st), string(body)) || !strings.HasSuffix(string(st), "certfile\tab\t/d/a/fullchain.pem\t/d/a/privkey.pem\n") {
		t.Errorf("state file:\n%s", st)
	}
	if _, err := StateFile(body, []Cert{{ID: "ab", FullChainFile: "/d/a\n/x", KeyFile: "/k"}}); err == nil {
		t.Error("a newline in a file name was written")
	}
}

func TestCertID(t *testing.T) {
	a := CertID("chain", "key")
	if len(a) != 32 || CertID("chain", "key") != a || CertID("chai", "nkey") == a {
		t.Errorf("CertID: %q", a)
	}
}

// TestEncodeHSTSField: the <hsts> field stays the bare max-age without
// directives (the original form) and is the canonical header value with
// them; a max-age of 0 is "0" whatever the directives.
func TestEncodeHSTSField(t *testing.T) {
	for _, c := range []struct {
		r    Route
		want string
	}{
		{Route{HSTS: 600}, "600"},
		{Route{HSTS: 0, HSTSPreload: true}, "0"},
		{Route{HSTS: -5, HSTSIncludeSubDomains: true}, "0"},
		{Route{HSTS: 600, HSTSPreload: true}, "max-age=600; preload"},
		{Route{HSTS: 86400, HSTSIncludeSubDomains: true}, "max-age=86400; includeSubDomains"},
		{Route{HSTS: 86400, HSTSIncludeSubDomains: true, HSTSPreload: true}, "max-age=86400; includeSubDomains; preload"},
	} {
		c.r.Host, c.r.Scheme = "a.test", "http"
		body, _, err := Table{Routes: []Route{c.r}}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if want := "route\ta.test\thttp\t0\t" + c.want + "\t\t\n"; !strings.HasSuffix(string(body), want) {
			t.Errorf("%+v: body %q, want suffix %q", c.r, body, want)
		}
	}
}

// A fastcgi route carries its root as the option field root=<path>; a
// root with another scheme, or one routing.ValidRoot refuses, is refused.
func TestEncodeRoot(t *testing.T) {
	body, _, err := Table{Routes: []Route{{Host: "php.test", Scheme: "fastcgi", Root: "/var/www/public", Peers: []string{"10.0.0.2:9000"}}}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if want := "route\tphp.test\tfastcgi\t0\t0\t\t10.0.0.2:9000\troot=/var/www/public\n"; !strings.Contains(string(body), want) {
		t.Errorf("body %q, want the line %q", body, want)
	}
	for _, r := range []Route{
		{Host: "a.test", Scheme: "fastcgi"},
		{Host: "a.test", Scheme: "http", Root: "/srv"},
		{Host: "a.test", Scheme: "fastcgi", Root: "/srv/../etc"},
		{Host: "a.test", Scheme: "fastcgi", Root: "/srv\troot=/x"},
	} {
		if _, _, err := (Table{Routes: []Route{r}}).Encode(); err == nil {
			t.Errorf("%+v: encoded", r)
		}
	}
}

func TestEncodeOptions(t *testing.T) {
	r := Route{Host: "a.test", Scheme: "http", Peers: []string{"10.0.0.2:80"},
		Options: []Option{{"max-body", "10m"}, {"x-1", "a=b c"}}}
	body, _, err := Table{Routes: []Route{r}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if want := "route\ta.test\thttp\t0\t0\t\t10.0.0.2:80\tmax-body=10m\tx-1=a=b c\n"; !strings.HasSuffix(string(body), want) {
		t.Errorf("body:\n%s\nwant suffix:\n%s", body, want)
	}
	for _, o := range []Option{{"", "v"}, {"Max", "v"}, {"a=b", "v"}, {"a\tb", "v"}, {"a", "x\ty"}, {"a", "x\ny"}, {"a", "x\x00"}, {strings.Repeat("a", 33), "v"}} {
		r.Options = []Option{o}
		if _, _, err := (Table{Routes: []Route{r}}).Encode(); err == nil {
			t.Errorf("option %q=%q encoded", o.Name, o.Value)
		}
	}
}

func TestEncodePaths(t *testing.T) {
	tab := Table{Routes: []Route{
		{Host: "a.test", Path: "/api", Scheme: "grpc", Peers: []string{"10.0.0.3:80"}, Options: []Option{{OptionPathStrip, "1"}}},
		{Host: "a.test", Scheme: "http", Peers: []string{"10.0.0.2:80"}, Options: []Option{{OptionPathList, "/api"}}},
	}}
	body, _, err := tab.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := "route\ta.test\thttp\t0\t0\t\t10.0.0.2:80\tpath-list=/api\npath\ta.test\t/api\tgrpc\t0\t0\t\t10.0.0.3:80\tpath-strip=1\n"
	if !strings.HasSuffix(string(body), want) {
		t.Errorf("body:\n%s\nwant suffix:\n%s", body, want)
	}
	for _, p := range []string{"api", "/a b", "/a\tb", "/a\n"} {
		bad := Table{Routes: []Route{{Host: "a.test", Path: p, Scheme: "http"}}}
		if _, _, err := bad.Encode(); err == nil {
			t.Errorf("path %q encoded", p)
		}
	}
	dup := Table{Routes: []Route{{Host: "a.test", Path: "/a", Scheme: "http"}, {Host: "a.test", Path: "/a", Scheme: "http"}}}
	if _, _, err := dup.Encode(); err == nil {
		t.Error("a path given twice encoded")
	}
}
