package render

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/siteopts"
	"github.com/portico/portico/internal/store"
)

// accessGolden: every access option, on an HTTP and a gRPC route, two
// routes sharing a rate zone, and a route with none beside them.
func accessGolden() Input {
	all := siteopts.Access{
		Allow:    []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")},
		AuthFile: "users", MaxBody: siteopts.Size{Set: true, Bytes: 10 << 20}, Timeout: 90 * time.Second,
		ConnectTimeout: 2 * time.Second, Rate: siteopts.Rate{N: 10, Per: time.Second}, Burst: -1,
	}
	return Input{Routes: []routing.Route{
		with(route("a.example.com", "10.0.0.2:80"), func(r *routing.Route) { r.Site.Access = all }),
		with(route("g.example.com", "10.0.0.3:50051"), func(r *routing.Route) {
			r.Protocol = routing.ProtoGRPC
			r.Site.Access = siteopts.Access{Timeout: 1500 * time.Millisecond, Rate: siteopts.Rate{N: 10, Per: time.Second}, Burst: 0}
		}),
		with(route("u.example.com", "10.0.0.4:80"), func(r *routing.Route) {
			r.Site.Access = siteopts.Access{MaxBody: siteopts.Size{Set: true}, Rate: siteopts.Rate{N: 30, Per: time.Minute}, Burst: 5}
		}),
		route("plain.example.com", "10.0.0.5:80"),
	}, Settings: Settings{AuthDir: "/var/lib/portico/nginx/auth"}}
}

func TestAccessNeedsAuthDir(t *testing.T) {
	in := accessGolden()
	in.Settings.AuthDir = ""
	if _, err := Render(in); err == nil || !strings.Contains(err.Error(), "auth-file") {
		t.Errorf("rendered portico.auth-file without an auth dir: %v", err)
	}
}

// FuzzRenderAccessAccepted: whatever the access labels say, routing.Build
// plus Render either drops the container or produces a config nginx -t
// accepts.
//
//	go test ./internal/nginx/render -run '^$' -fuzz FuzzRenderAccessAccepted -fuzztime 60s
func FuzzRenderAccessAccepted(f *testing.F) {
	good := []string{"10.0.0.0/8, ::1", "users.htpasswd", "10m", "90s", "500ms", "10r/s", "5"}
	f.Add(good[0], good[1], good[2], good[3], good[4], good[5], good[6])
	f.Add("192.0.2.1", "a", "0", "1m30s", "120", "30r/m", "0")
	for _, h := range hostileSeeds(f) {
		for i := range good {
			v := append([]string(nil), good...)
			v[i] = h
			f.Add(v[0], v[1], v[2], v[3], v[4], v[5], v[6])
		}
	}
	var mu sync.Mutex
	accepted := map[string]bool{}
	f.Fuzz(func(t *testing.T, allow, auth, body, timeout, connect, rate, burst string) {
		labels := map[string]string{routing.LabelVhost: "a.example.com", routing.LabelAllow: allow, routing.LabelAuthFile: auth,
			routing.LabelMaxBody: body, routing.LabelTimeout: timeout, routing.LabelConnectTimeout: connect,
			routing.LabelRate: rate, routing.LabelRateBurst: burst}
		cs := []store.Container{{ID: "f1", Name: "fuzzed", Host: "n1", State: "running", Labels: labels,
			Networks: map[string]store.Network{"bridge": {IPv4: "10.0.0.2"}}}}
		res := routing.Build(cs, routing.Options{Network: "bridge"})
		conf, err := Render(Input{Routes: res.Routes, Settings: Settings{AuthDir: "/nonexistent/auth", NginxVersion: "1.22.1"}})
		if err != nil {
			t.Fatalf("routing.Build gave routes Render refuses: %v\nroutes: %+v", err, res.Routes)
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
