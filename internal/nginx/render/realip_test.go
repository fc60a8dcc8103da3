package render

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/portico/portico/internal/routing"
)

func TestParseTrustedProxies(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want []string
	}{
		{nil, nil},
		{[]string{"127.0.0.1"}, []string{"127.0.0.1/32"}},
		{[]string{"10.1.2.3/8", " 10.0.0.0/8 "}, []string{"10.0.0.0/8"}},
		{[]string{"fd00::1/8", "::1"}, []string{"fd00::/8", "::1/128"}},
		{[]string{"192.168.0.0/16", "127.0.0.1/32", "192.168.1.0/24"}, []string{"192.168.0.0/16", "127.0.0.1/32", "192.168.1.0/24"}},
	} {
		got, err := ParseTrustedProxies(tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if !slices.Equal(s, tt.want) {
			t.Errorf("%q = %q, want %q", tt.in, s, tt.want)
		}
	}
}

// Hostile and careless values are refused with the value named; none can
// reach the config.
func TestParseTrustedProxiesRejects(t *testing.T) {
	for _, bad := range []string{
		"", "localhost", "10.0.0.0/33", "10.0.0.0/8; include /etc/passwd", "10.0.0.0/8 1;\n}", "fe80::1%eth0",
		"fe80::/10%eth0", "255.255.255.255", "255.255.255.255/32", "0.0.0.0/0", "::/0", "$remote_addr", "unix:", "10.0.0.0/8\n", "1.2.3.4/8/8", "１.2.3.4",
		"10.0.0.0/-1", "\"10.0.0.0/8\"", "10.0.0.0/8 ",
	} {
		in := []string{"127.0.0.1", bad}
		if bad == "10.0.0.0/8 " || bad == "10.0.0.0/8\n" {
			// Surrounding space is trimmed: the value is fine.
			if _, err := ParseTrustedProxies(in); err != nil {
				t.Errorf("%q: %v", bad, err)
			}
			continue
		}
		_, err := ParseTrustedProxies(in)
		if err == nil {
			t.Errorf("%q: accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), strconv.Quote(strings.TrimSpace(bad))) {
			t.Errorf("%q: error does not name the value: %v", bad, err)
		}
	}
}

// Render refuses prefixes that did not come through ParseTrustedProxies
// and trust everyone or nothing valid.
func TestRenderRejectsBadTrustedProxies(t *testing.T) {
	for _, p := range []netip.Prefix{{}, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")} {
		in := Input{Routes: []routing.Route{route("a.example.com", "10.0.0.2:80")}, Settings: Settings{TrustedProxies: []netip.Prefix{p}}}
		if _, err := Render(in); err == nil {
			t.Errorf("%v: rendered", p)
		}
	}
}

// Without trusted proxies no realip directive is rendered and every
// upstream gets the connection's address; with them the chain variable.
func TestRenderClientAddressHeaders(t *testing.T) {
	rs := []routing.Route{route("a.example.com", "10.0.0.2:80"),
		with(route("g.example.com", "10.0.0.3:50051"), func(r *routing.Route) { r.Protocol = routing.ProtoGRPC })}
	plain, err := Render(Input{Routes: rs})
	if err != nil {
		t.Fatal(err)
	}
	for _, no := range []string{"proxy_add_x_forwarded_for", "real_ip", "$http_x_forwarded_for", "$http_upgrade;", "$http_forwarded", "$http_x_forwarded_"} {
		if strings.Contains(string(plain), no) {
			t.Errorf("plain config contains %q", no)
		}
	}
	for _, want := range []string{"proxy_set_header X-Forwarded-For $remote_addr;", "grpc_set_header X-Forwarded-For $remote_addr;",
		"proxy_set_header X-Real-IP $remote_addr;", "grpc_set_header X-Real-IP $remote_addr;"} {
		if !strings.Contains(string(plain), want) {
			t.Errorf("plain config lacks %q", want)
		}
	}
	trusted, err := Render(Input{Routes: rs, Settings: Settings{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"set_real_ip_from 10.0.0.0/8;", "real_ip_recursive on;",
		"proxy_set_header X-Forwarded-For $portico_x_forwarded_for;", "grpc_set_header X-Forwarded-For $portico_x_forwarded_for;"} {
		if !strings.Contains(string(trusted), want) {
			t.Errorf("trusted config lacks %q", want)
		}
	}
}

// FuzzTrustedProxies: whatever --trusted-proxies says, it is refused or
// renders a config nginx -t accepts, holding only canonical prefixes.
//
//	go test ./internal/nginx/render -run '^$' -fuzz FuzzTrustedProxies -fuzztime 30s
func FuzzTrustedProxies(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "10.0.0.0/8,fd00::/8", "::ffff:10.0.0.1/128", "10.0.0.0/8; include /etc/passwd", "0.0.0.0/0", "1.2.3.4/32 1;}"} {
		f.Add(s)
	}
	for _, h := range hostileSeeds(f) {
		f.Add(h)
	}
	accepted := map[string]bool{}
	f.Fuzz(func(t *testing.T, flag string) {
		ps, err := ParseTrustedProxies(strings.Split(flag, ","))
		if err != nil {
			return
		}
		conf, err := Render(Input{Routes: []routing.Route{route("a.example.com", "10.0.0.2:80")}, Settings: Settings{TrustedProxies: ps}})
		if err != nil {
			t.Fatalf("%q parsed but does not render: %v", flag, err)
		}
		for _, l := range strings.Split(string(conf), "\n") {
			if v, ok := strings.CutPrefix(l, "set_real_ip_from "); ok {
				p, err := netip.ParsePrefix(strings.TrimSuffix(v, ";"))
				if err != nil || p.Masked() != p || p.String()+";" != v {
					t.Fatalf("%q rendered %q", flag, l)
				}
			}
		}
		if h := hash(conf); !accepted[h] {
			if out, err := nginxTestConf(t, conf); err != nil {
				t.Fatalf("nginx -t refused %q: %v\n%s", flag, err, out)
			}
			accepted[h] = true
		}
	})
}
