package routing

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
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
		{name: "stopping replica leaves the upstreams, stays on the route",
			cs: []store.Container{
				ctr("web-1", vhost("a.test"), withIP("172.18.0.2")),
				ctr("web-2", vhost("a.test"), withIP("172.18.0.3"), isStopping),
			},
			routes: []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto,
				Upstreams: []string{"172.18.0.2:80"}, Containers: []string{"web-1", "web-2"}}},
			services: []string{"web-1", "web-2"}},
		{name: "every replica stopping: no upstreams (503 at once), the vhost stays known",
			cs: []store.Container{
				ctr("web-1", labels(LabelVhost, "a.test", LabelDefault, "true"), withIP("172.18.0.2"), isStopping),
				ctr("web-2", labels(LabelVhost, "a.test", LabelDefault, "true"), withIP("172.18.0.3"), withState("running", "healthy"), isStopping),
			},
			routes:   []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, Default: true, Containers: []string{"web-1", "web-2"}}},
			services: []string{"web-1", "web-2"}},
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
			probs:    []wantProblem{{E, LabelVhost, `portico.protocol grpc differs from http set by container "a", which claimed this vhost first`}},
			services: []string{"a", "b"}},
		{name: "https and hsts conflicts",
			cs: []store.Container{
				ctr("a", labels(LabelVhost, "a.test", LabelHSTS, "600")),
				ctr("b", labels(LabelVhost, "a.test", LabelHSTS, "true"), withIP("172.18.0.3")),
				ctr("c", labels(LabelVhost, "a.test", LabelHSTS, "600", LabelHTTPS, "both"), withIP("172.18.0.4")),
				ctr("d", labels(LabelVhost, "a.test", LabelHSTS, "600", LabelPort, "81"), withIP("172.18.0.5"), withNets(map[string]store.Network{"other": {IPv4: "10.9.0.5"}})),
			},
			routes: []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, HSTS: HSTS{MaxAge: 600},
				Upstreams: []string{"10.9.0.5:81", "172.18.0.2:80"}, Containers: []string{"a", "d"}}},
			probs: []wantProblem{
				{E, LabelVhost, "portico.hsts max-age=31536000 differs from max-age=600"},
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

func withRev(rev int64) func(*store.Container) {
	return func(c *store.Container) { c.CreateRevision = rev }
}

// TestBuildOwnership: the earlier claim of a vhost (by etcd create revision)
// keeps it, whatever the names; unknown revisions come last; replicas with
// identical settings still join; a rejected record never routes.
func TestBuildOwnership(t *testing.T) {
	E := SeverityError
	owner := func(mods ...func(*store.Container)) store.Container {
		return ctr("zzz-owner", vhost("a.test"), append([]func(*store.Container){withIP("172.18.0.2")}, mods...)...)
	}
	intruder := func(mods ...func(*store.Container)) store.Container {
		return ctr("aaa-intruder", labels(LabelVhost, "a.test", LabelProtocol, "https"), append([]func(*store.Container){withIP("172.18.0.66")}, mods...)...)
	}
	ownerRoute := Route{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, Upstreams: []string{"172.18.0.2:80"}, Containers: []string{"zzz-owner"}}
	intruderRoute := Route{Host: "a.test", Protocol: ProtoHTTPS, HTTPS: HTTPSAuto, Upstreams: []string{"172.18.0.66:80"}, Containers: []string{"aaa-intruder"}}
	ownerWins := []wantProblem{{E, LabelVhost, `portico.protocol https differs from http set by container "zzz-owner", which claimed this vhost first`}}
	tests := []struct {
		name   string
		cs     []store.Container
		routes []Route
		probs  []wantProblem
	}{
		{name: "earlier create revision keeps the vhost against a name that sorts first",
			cs: []store.Container{owner(withRev(10)), intruder(withRev(20))}, routes: []Route{ownerRoute}, probs: ownerWins},
		{name: "revisions decide, not names, either way",
			cs: []store.Container{owner(withRev(30)), intruder(withRev(20))}, routes: []Route{intruderRoute},
			probs: []wantProblem{{E, LabelVhost, `portico.protocol http differs from https set by container "aaa-intruder", which claimed this vhost first`}}},
		{name: "unknown revision comes after a known one",
			cs: []store.Container{owner(withRev(10)), intruder()}, routes: []Route{ownerRoute}, probs: ownerWins},
		{name: "a known revision beats an unknown one, whatever the name",
			cs: []store.Container{owner(), intruder(withRev(99))}, routes: []Route{intruderRoute},
			probs: []wantProblem{{E, LabelVhost, `set by container "aaa-intruder", which claimed`}}},
		{name: "both unknown: name order as before",
			cs: []store.Container{owner(), intruder()}, routes: []Route{intruderRoute},
			probs: []wantProblem{{E, LabelVhost, `differs from https set by container "aaa-intruder"`}}},
		{name: "equal revisions (one transaction): name order",
			cs: []store.Container{owner(withRev(5)), intruder(withRev(5))}, routes: []Route{intruderRoute},
			probs: []wantProblem{{E, LabelVhost, `set by container "aaa-intruder"`}}},
		{name: "replica with identical settings joins, whatever its revision",
			cs: []store.Container{owner(withRev(10)), intruder(withRev(20)),
				ctr("aaa-replica", vhost("a.test"), withIP("172.18.0.3"), withRev(30)),
				ctr("zzz-replica", vhost("a.test"), withIP("172.18.0.4"), withRev(5), withNode("other")),
			},
			// zzz-replica's record is older still: it defines the route, with the same settings.
			routes: []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto,
				Upstreams: []string{"172.18.0.2:80", "172.18.0.3:80", "172.18.0.4:80"}, Containers: []string{"aaa-replica", "zzz-owner", "zzz-replica"}}},
			probs: []wantProblem{{E, LabelVhost, `portico.protocol https differs from http set by container "zzz-replica"`}}},
		{name: "a stopping owner keeps the vhost: no upstream, the intruder still rejected",
			cs:     []store.Container{owner(withRev(10), isStopping), intruder(withRev(20))},
			routes: []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, Containers: []string{"zzz-owner"}}},
			probs:  ownerWins},
		{name: "a stopping owner keeps the vhost while a live replica serves it",
			cs: []store.Container{owner(withRev(10), isStopping), intruder(withRev(20)),
				ctr("aaa-replica", vhost("a.test"), withIP("172.18.0.3"), withRev(30))},
			routes: []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto,
				Upstreams: []string{"172.18.0.3:80"}, Containers: []string{"aaa-replica", "zzz-owner"}}},
			probs: ownerWins},
		{name: "a rejected record never routes and names its reason",
			cs: []store.Container{
				intruder(withRev(1), func(c *store.Container) { c.Rejected = "record of 70000 bytes exceeds the cap of 65536" }),
				owner(withRev(10)),
			},
			routes: []Route{ownerRoute},
			probs:  []wantProblem{{E, "", "reporter rejected the container: \"record of 70000 bytes exceeds the cap of 65536\""}}},
		{name: "a hostile rejected reason is truncated and quoted",
			cs: []store.Container{
				ctr("evil", vhost("a.test"), func(c *store.Container) { c.Rejected = "\x1b[31m" + strings.Repeat("x", 100000) }),
			},
			probs: []wantProblem{{E, "", `rejected the container: "\x1b[31mxxx`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reversed := slices.Clone(tt.cs)
			slices.Reverse(reversed)
			for _, cs := range [][]store.Container{tt.cs, reversed} {
				res := Build(cs, Options{Network: "proxy"})
				if !reflect.DeepEqual(res.Routes, tt.routes) && (len(res.Routes) != 0 || len(tt.routes) != 0) {
					t.Errorf("routes\n got %+v\nwant %+v", res.Routes, tt.routes)
				}
				checkProblems(t, res.Problems, tt.probs)
				for _, p := range res.Problems {
					if len(p.Message) > 1024 {
						t.Errorf("problem message of %d bytes", len(p.Message))
					}
				}
			}
		})
	}
}
