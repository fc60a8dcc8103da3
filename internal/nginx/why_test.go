package nginx

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/routing"
)

func TestReloadReason(t *testing.T) {
	rt := func(host string, ups ...string) routing.Route {
		return routing.Route{Host: host, Protocol: "http", HTTPS: "auto", Upstreams: ups, Containers: []string{host + "-c"}}
	}
	cert := func(p, fp string) render.CertRef {
		return render.CertRef{Primary: p, Names: []string{p}, Fingerprint: fp}
	}
	var many []routing.Route
	for i := range 8 {
		many = append(many, rt(fmt.Sprintf("h%d.test", i), "10.0.0.1:80"))
	}
	hsts := rt("s.test", "10.0.0.1:80")
	hsts.HSTS = routing.HSTS{MaxAge: 300}
	moved := rt("m.test", "10.0.0.1:80")
	moved.Containers = []string{"other"}
	pathed := rt("p.test", "10.0.0.1:80")
	pathed.Paths = []routing.PathRoute{{Path: "/api", Protocol: "http", Upstreams: []string{"10.0.0.2:80"}}}
	for _, tt := range []struct {
		name             string
		prev, next       []routing.Route
		prevCert, nxCert []render.CertRef
		want             string
	}{
		{name: "one route added", prev: nil, next: []routing.Route{rt("a.test", "10.0.0.1:80")},
			want: "1 route added: a.test"},
		{name: "route removed", prev: []routing.Route{rt("a.test"), rt("b.test")}, next: []routing.Route{rt("a.test")},
			want: "1 route removed: b.test"},
		{name: "upstreams changed", prev: []routing.Route{rt("c.test", "10.0.0.1:80")}, next: []routing.Route{rt("c.test", "10.0.0.1:80", "10.0.0.2:80")},
			want: "upstreams changed: c.test"},
		{name: "last replica gone", prev: []routing.Route{rt("c.test", "10.0.0.1:80")}, next: []routing.Route{rt("c.test")},
			want: "upstreams changed: c.test"},
		{name: "certificate changed", prev: []routing.Route{rt("d.test")}, next: []routing.Route{rt("d.test")},
			prevCert: []render.CertRef{cert("d.test", "aa")}, nxCert: []render.CertRef{cert("d.test", "bb")},
			want: "certificate changed: d.test"},
		{name: "certificate added and removed", prevCert: []render.CertRef{cert("old.test", "aa")}, nxCert: []render.CertRef{cert("new.test", "bb")},
			want: "certificate added: new.test; certificate removed: old.test"},
		{name: "route settings", prev: []routing.Route{rt("s.test", "10.0.0.1:80")}, next: []routing.Route{hsts},
			want: "route settings changed: s.test"},
		{name: "containers only", prev: []routing.Route{rt("m.test", "10.0.0.1:80")}, next: []routing.Route{moved},
			want: "containers changed: m.test"},
		{name: "a path added", prev: []routing.Route{rt("p.test", "10.0.0.1:80")}, next: []routing.Route{pathed},
			want: "paths changed: p.test"},
		{name: "nothing of ours", prev: []routing.Route{rt("a.test")}, next: []routing.Route{rt("a.test")},
			want: "settings or template changed"},
		{name: "bounded list", next: many,
			want: "8 routes added: h0.test, h1.test, h2.test, h3.test, h4.test and 3 more"},
		{name: "several kinds, sorted names",
			prev: []routing.Route{rt("z.test", "10.0.0.1:80"), rt("gone.test")},
			next: []routing.Route{rt("z.test", "10.0.0.9:80"), rt("b.test"), rt("a.test")},
			want: "2 routes added: a.test, b.test; 1 route removed: gone.test; upstreams changed: z.test"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := reloadReason(tt.prev, tt.next, tt.prevCert, tt.nxCert); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestReloadReasonBoundedForManyRoutes(t *testing.T) {
	var next []routing.Route
	for i := range 10000 {
		next = append(next, routing.Route{Host: fmt.Sprintf("host-%05d.example.test", i)})
	}
	got := reloadReason(nil, next, nil, nil)
	if len(got) > 200 || !strings.HasSuffix(got, "and 9995 more") {
		t.Errorf("reason for 10000 new routes is %d bytes: %q", len(got), got)
	}
}

func TestAppliedWhyRemembers(t *testing.T) {
	var a applied
	r1 := []routing.Route{{Host: "a.test"}}
	if got := a.why(r1, nil); got != "first apply since start: 1 route" {
		t.Errorf("first: %q", got)
	}
	if got := a.why(append(r1, routing.Route{Host: "b.test"}), nil); got != "1 route added: b.test" {
		t.Errorf("second: %q", got)
	}
	if got := a.why(r1, nil); got != "1 route removed: b.test" {
		t.Errorf("third: %q", got)
	}
}

// TestReloadReasonSortedWalk: the one-walk comparison of routes sorted by
// host says what the map comparison of the same routes unsorted says.
func TestReloadReasonSortedWalk(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	gen := func() []routing.Route {
		var rs []routing.Route
		for i := range 12 {
			if rng.IntN(3) == 0 {
				continue
			}
			r := routing.Route{Host: fmt.Sprintf("h%02d.test", i), Upstreams: []string{fmt.Sprintf("10.0.0.%d:80", rng.IntN(2))},
				Protocol: []string{"http", "https"}[rng.IntN(2)], Containers: []string{fmt.Sprintf("c%d", rng.IntN(2))}, NoRoot: rng.IntN(2) == 0}
			rs = append(rs, r)
		}
		return rs
	}
	for range 200 {
		prev, next := gen(), gen()
		want := reloadReason(slices.Clone(prev), slices.Clone(next), nil, nil)
		sp, sn := slices.Clone(prev), slices.Clone(next)
		rng.Shuffle(len(sp), func(i, j int) { sp[i], sp[j] = sp[j], sp[i] })
		rng.Shuffle(len(sn), func(i, j int) { sn[i], sn[j] = sn[j], sn[i] })
		if len(sp) > 1 && byHost(sp) || len(sn) > 1 && byHost(sn) {
			continue
		}
		if got := reloadReason(sp, sn, nil, nil); got != want {
			t.Fatalf("unsorted: %q, sorted: %q", got, want)
		}
	}
}
