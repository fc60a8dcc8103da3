package routing

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/portico/portico/internal/store"
)

func TestBuild(t *testing.T) {
	E, W := SeverityError, SeverityWarning
	stopped := withState("exited", "")
	tests := []struct {
		name   string
		cs     []store.Container
		routes []Route
		probs  []wantProblem
		// services lists the accepted containers' names in order.
		services []string
	}{
		{name: "empty"},
		{name: "replicas join one route",
			cs: []store.Container{
				ctr("web-2", vhost("a.test"), withIP("172.18.0.3")),
				ctr("web-1", vhost("a.test"), withIP("172.18.0.2")),
				ctr("web-3", vhost("a.test"), withIP("172.18.0.2"), withNode("node2")), // same address on another node: one upstream
			},
			routes: []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto,
				Upstreams: []string{"172.18.0.2:80", "172.18.0.3:80"}, Containers: []string{"web-1", "web-2", "web-3"}}},
			services: []string{"web-1", "web-2", "web-3"}},
		{name: "same name on two nodes listed once",
			cs: []store.Container{
				ctr("web", vhost("a.test"), withNode("n2"), withIP("10.0.0.2")),
				ctr("web", vhost("a.test"), withNode("n1"), withIP("10.0.0.1")),
			},
			routes: []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto,
				Upstreams: []string{"10.0.0.1:80", "10.0.0.2:80"}, Containers: []string{"web"}}},
			services: []string{"web", "web"}},
		{name: "stopped replica is known but not an upstream",
			cs: []store.Container{
				ctr("web-1", vhost("a.test"), withIP("172.18.0.2")),
				ctr("web-2", vhost("a.test"), withNets(map[string]store.Network{"proxy": {}}), stopped),
				ctr("web-3", vhost("a.test"), withIP("172.18.0.4"), withState("running", "unhealthy")),
			},
			routes: []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto,
				Upstreams: []string{"172.18.0.2:80"}, Containers: []string{"web-1", "web-2", "web-3"}}},
			services: []string{"web-1", "web-2", "web-3"}},
		{name: "no live replica: empty upstreams",
			cs:       []store.Container{ctr("web", vhost("a.test"), withNets(nil), stopped)},
			routes:   []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, Containers: []string{"web"}}},
			services: []string{"web"}},
		{name: "one container, several routes; wildcard separate from exact",
			cs: []store.Container{ctr("web", vhost("a.test *.a.test")), ctr("x", vhost("x.a.test"), withIP("172.18.0.9"))},
			routes: []Route{
				{Host: "*.a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, Upstreams: []string{"172.18.0.2:80"}, Containers: []string{"web"}},
				{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, Upstreams: []string{"172.18.0.2:80"}, Containers: []string{"web"}},
				{Host: "x.a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, Upstreams: []string{"172.18.0.9:80"}, Containers: []string{"x"}},
			},
			services: []string{"web", "x"}},
		{name: "invalid container rejected alone",
			cs: []store.Container{
				ctr("bad", labels(LabelVhost, "a.test", LabelPort, "abc"), withIP("172.18.0.3")),
				ctr("good", vhost("a.test")),
			},
			routes: []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto,
				Upstreams: []string{"172.18.0.2:80"}, Containers: []string{"good"}}},
			probs:    []wantProblem{{E, LabelPort, "not a port"}},
			services: []string{"good"}},
		{name: "protocol conflict: first claimant wins, the other claim rejected",
			cs: []store.Container{
				ctr("b", labels(LabelVhost, "a.test b.test", LabelProtocol, "grpc"), withIP("172.18.0.3")),
				ctr("a", vhost("a.test")),
			},
			routes: []Route{
				{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, Upstreams: []string{"172.18.0.2:80"}, Containers: []string{"a"}},
				{Host: "b.test", Protocol: ProtoGRPC, HTTPS: HTTPSAuto, Upstreams: []string{"172.18.0.3:80"}, Containers: []string{"b"}},
			},
			probs:    []wantProblem{{E, LabelVhost, `portico.protocol grpc differs from http set by its first claimant, container "a"`}},
			services: []string{"a", "b"}},
		{name: "https and hsts conflicts",
			cs: []store.Container{
				ctr("a", labels(LabelVhost, "a.test", LabelHSTS, "600")),
				ctr("b", labels(LabelVhost, "a.test", LabelHSTS, "true"), withIP("172.18.0.3")),
				ctr("c", labels(LabelVhost, "a.test", LabelHSTS, "600", LabelHTTPS, "both"), withIP("172.18.0.4")),
				ctr("d", labels(LabelVhost, "a.test", LabelHSTS, "600", LabelPort, "81"), withIP("172.18.0.5"), withNets(map[string]store.Network{"other": {IPv4: "10.9.0.5"}})),
			},
			routes: []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, HSTS: 600,
				Upstreams: []string{"10.9.0.5:81", "172.18.0.2:80"}, Containers: []string{"a", "d"}}},
			probs: []wantProblem{
				{E, LabelVhost, "portico.hsts 31536000 differs from 600"},
				{E, LabelVhost, "portico.https both differs from auto"},
			},
			services: []string{"a", "b", "c", "d"}},
		{name: "two defaults: first wins, replicas agree silently",
			cs: []store.Container{
				ctr("b", labels(LabelVhost, "b.test", LegacyDefault, "true"), withIP("172.18.0.3")),
				ctr("a-2", labels(LabelVhost, "a.test", LabelDefault, "true"), withIP("172.18.0.4")),
				ctr("a-1", labels(LabelVhost, "a.test other.test", LabelDefault, "true")),
			},
			routes: []Route{
				{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, Default: true, Upstreams: []string{"172.18.0.2:80", "172.18.0.4:80"}, Containers: []string{"a-1", "a-2"}},
				{Host: "b.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, Upstreams: []string{"172.18.0.3:80"}, Containers: []string{"b"}},
				{Host: "other.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, Upstreams: []string{"172.18.0.2:80"}, Containers: []string{"a-1"}},
			},
			probs:    []wantProblem{{W, LegacyDefault, `the default server is already vhost "a.test" of container "a-1"`}},
			services: []string{"a-1", "a-2", "b"}},
		{name: "default whose claim was rejected is ignored",
			cs: []store.Container{
				ctr("a", vhost("a.test")),
				ctr("b", labels(LabelVhost, "a.test", LabelDefault, "true", LabelProtocol, "https"), withIP("172.18.0.3")),
				ctr("c", labels(LabelVhost, "c.test", LabelDefault, "true"), withIP("172.18.0.4")),
			},
			routes: []Route{
				{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, Upstreams: []string{"172.18.0.2:80"}, Containers: []string{"a"}},
				{Host: "c.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, Default: true, Upstreams: []string{"172.18.0.4:80"}, Containers: []string{"c"}},
			},
			probs: []wantProblem{
				{E, LabelVhost, "portico.protocol https differs"},
				{W, LabelDefault, `ignored: the claim on vhost "a.test" was rejected`},
			},
			services: []string{"a", "b", "c"}},
		{name: "duplicate record for one node and id",
			cs: []store.Container{
				ctr("web", vhost("a.test")),
				ctr("web", vhost("a.test")),
			},
			routes: []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto,
				Upstreams: []string{"172.18.0.2:80"}, Containers: []string{"web"}}},
			probs:    []wantProblem{{E, "", "duplicate record"}},
			services: []string{"web"}},
		{name: "disabled and unlabelled containers yield nothing",
			cs: []store.Container{
				ctr("off", labels(LabelVhost, "a.test", LabelEnable, "false")),
				ctr("plain", nil),
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Build(tt.cs, Options{Network: "proxy"})
			if !reflect.DeepEqual(res.Routes, tt.routes) && (len(res.Routes) != 0 || len(tt.routes) != 0) {
				t.Errorf("routes\n got %+v\nwant %+v", res.Routes, tt.routes)
			}
			checkProblems(t, res.Problems, tt.probs)
			var names []string
			for _, s := range res.Services {
				names = append(names, s.Container)
			}
			if !slices.Equal(names, tt.services) {
				t.Errorf("services %v; want %v", names, tt.services)
			}
			if bad := unsafeFields(res); len(bad) > 0 {
				t.Errorf("unsafe fields: %v", bad)
			}
		})
	}
}

// TestBuildOrderIndependent shuffles a mixed set of records and expects the
// same Result every time.
func TestBuildOrderIndependent(t *testing.T) {
	cs := []store.Container{
		ctr("a", labels(LabelVhost, "a.test *.a.test", LabelDefault, "true")),
		ctr("a", vhost("a.test"), withNode("node2"), withIP("172.18.0.12")),
		ctr("b", labels(LabelVhost, "a.test", LabelProtocol, "grpc"), withIP("172.18.0.3")),
		ctr("c", labels(LabelVhost, "c.test", LabelDefault, "yes"), withIP("172.18.0.4")),
		ctr("d", labels(LabelVhost, "d.test", LabelPort, "x"), withIP("172.18.0.5")),
		ctr("e", labels(LegacyVhost, "e.test", "portico.prot", "http"), withEnv(EnvVirtualHost, "f.test"), withIP("172.18.0.6")),
		ctr("f", vhost("c.test"), withNets(nil), withState("exited", "")),
		ctr("g", vhost("g.test"), withNets(map[string]store.Network{"x": {IPv6: "fd00::7"}})),
		ctr("h", vhost("c.test"), withIP("172.18.0.8")),
		ctr("h", vhost("c.test"), withIP("172.18.0.9"), func(c *store.Container) { c.ID = "id-h2" }),
	}
	want := Build(cs, Options{Network: "proxy"})
	if len(want.Routes) == 0 || len(want.Problems) == 0 {
		t.Fatalf("fixture too small: %+v", want)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 50 {
		shuffled := slices.Clone(cs)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := Build(shuffled, Options{Network: "proxy"}); !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffle %d: result differs\n got %+v\nwant %+v", i, got, want)
		}
	}
	if !slices.IsSortedFunc(want.Problems, func(a, b Problem) int {
		if a.Container != b.Container {
			return compareStr(a.Container, b.Container)
		}
		return compareStr(a.Label, b.Label)
	}) {
		t.Errorf("problems not sorted: %+v", want.Problems)
	}
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestBuildDoesNotModifyInput checks Build sorts a copy.
func TestBuildDoesNotModifyInput(t *testing.T) {
	cs := []store.Container{ctr("b", vhost("b.test")), ctr("a", vhost("a.test"))}
	Build(cs, Options{})
	if cs[0].Name != "b" {
		t.Errorf("input reordered: %v", cs)
	}
}
