package routing

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/portico/portico/internal/pathprefix"
	"github.com/portico/portico/internal/store"
)

// TestBuildPaths: the route table for containers that serve paths of one
// vhost. Containers with different paths are never replicas of each other;
// containers with the same vhost and path are.
func TestBuildPaths(t *testing.T) {
	E := SeverityError
	path := func(p string, kv ...string) map[string]string {
		return labels(append([]string{LabelVhost, "a.test", LabelPath, p}, kv...)...)
	}
	tests := []struct {
		name   string
		cs     []store.Container
		routes []Route
		probs  []wantProblem
	}{
		{name: "two paths on one vhost are two upstreams, not replicas",
			cs: []store.Container{
				ctr("root", vhost("a.test"), withIP("172.18.0.2")),
				ctr("api", path("/api"), withIP("172.18.0.3")),
			},
			routes: []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto,
				Upstreams: []string{"172.18.0.2:80"}, Containers: []string{"api", "root"},
				Paths: []PathRoute{{Path: "/api", Protocol: ProtoHTTP, Upstreams: []string{"172.18.0.3:80"}, Containers: []string{"api"}}}}}},
		{name: "same vhost and path are replicas; paths longest first",
			cs: []store.Container{
				ctr("api-1", path("/api"), withIP("172.18.0.3")),
				ctr("api-2", path("/api"), withIP("172.18.0.4")),
				ctr("v2", path("/api/v2/", LabelStripPath, "true"), withIP("172.18.0.5")),
				ctr("b", path("/b"), withIP("172.18.0.6"), withState("exited", "")),
			},
			routes: []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, NoRoot: true,
				Containers: []string{"api-1", "api-2", "b", "v2"},
				Paths: []PathRoute{
					{Path: "/api/v2/", Strip: true, Protocol: ProtoHTTP, Upstreams: []string{"172.18.0.5:80"}, Containers: []string{"v2"}},
					{Path: "/api", Protocol: ProtoHTTP, Upstreams: []string{"172.18.0.3:80", "172.18.0.4:80"}, Containers: []string{"api-1", "api-2"}},
					{Path: "/b", Protocol: ProtoHTTP, Containers: []string{"b"}},
				}}}},
		{name: "VIRTUAL_DEST on a path and on the root",
			cs: []store.Container{
				ctr("app1", vhost("a.test"), withEnv(EnvVirtualPath, "/app1/", EnvVirtualDest, "/"), withIP("172.18.0.3")),
				ctr("root", vhost("a.test"), withEnv(EnvVirtualDest, "/site/"), withIP("172.18.0.2")),
			},
			routes: []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, Dest: "/site/",
				Upstreams: []string{"172.18.0.2:80"}, Containers: []string{"app1", "root"},
				Paths: []PathRoute{{Path: "/app1/", Dest: "/", Protocol: ProtoHTTP, Upstreams: []string{"172.18.0.3:80"}, Containers: []string{"app1"}}}}}},
		{name: "protocol per path; a replica with another protocol on the same path is rejected",
			cs: []store.Container{
				ctr("root", vhost("a.test"), withIP("172.18.0.2")),
				ctr("grpc-1", path("/svc.Greeter/", LabelProtocol, "grpc"), withIP("172.18.0.3"), withRev(1)),
				ctr("grpc-2", path("/svc.Greeter/"), withIP("172.18.0.4"), withRev(2)),
			},
			routes: []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto,
				Upstreams: []string{"172.18.0.2:80"}, Containers: []string{"grpc-1", "root"},
				Paths: []PathRoute{{Path: "/svc.Greeter/", Protocol: ProtoGRPC, Upstreams: []string{"172.18.0.3:80"}, Containers: []string{"grpc-1"}}}}},
			probs: []wantProblem{{E, LabelVhost, `portico.protocol http differs from grpc set by container "grpc-1", which claimed this vhost and path /svc.Greeter/ first`}}},
		{name: "strip-path conflict on one path follows the first claimant",
			cs: []store.Container{
				ctr("api-1", path("/api", LabelStripPath, "true"), withIP("172.18.0.3"), withRev(1)),
				ctr("api-2", path("/api"), withIP("172.18.0.4"), withRev(2)),
			},
			routes: []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, NoRoot: true, Containers: []string{"api-1"},
				Paths: []PathRoute{{Path: "/api", Strip: true, Protocol: ProtoHTTP, Upstreams: []string{"172.18.0.3:80"}, Containers: []string{"api-1"}}}}},
			probs: []wantProblem{{E, LabelVhost, "portico.strip-path false differs from true"}}},
		{name: "vhost settings agree across paths: first claimant of the vhost wins",
			cs: []store.Container{
				ctr("root", labels(LabelVhost, "a.test", LabelHTTPS, "both"), withIP("172.18.0.2"), withRev(1)),
				ctr("api", path("/api", LabelHTTPS, "off"), withIP("172.18.0.3"), withRev(2)),
			},
			routes: []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSBoth,
				Upstreams: []string{"172.18.0.2:80"}, Containers: []string{"root"}}},
			probs: []wantProblem{{E, LabelVhost, `portico.https off differs from both set by container "root", which claimed this vhost first`}}},
		{name: "a path container may claim the vhost first",
			cs: []store.Container{
				ctr("api", path("/api", LabelHSTS, "600"), withIP("172.18.0.3"), withRev(1)),
				ctr("root", vhost("a.test"), withIP("172.18.0.2"), withRev(2)),
			},
			routes: []Route{{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, HSTS: HSTS{MaxAge: 600}, Containers: []string{"api"}, NoRoot: true,
				Paths: []PathRoute{{Path: "/api", Protocol: ProtoHTTP, Upstreams: []string{"172.18.0.3:80"}, Containers: []string{"api"}}}}},
			probs: []wantProblem{{E, LabelVhost, "portico.hsts off differs from max-age=600"}}},
		{name: "a path on one of two vhosts of a container applies to both",
			cs: []store.Container{
				ctr("api", labels(LabelVhost, "a.test,b.test", LabelPath, "/api"), withIP("172.18.0.3")),
			},
			routes: []Route{
				{Host: "a.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, NoRoot: true, Containers: []string{"api"},
					Paths: []PathRoute{{Path: "/api", Protocol: ProtoHTTP, Upstreams: []string{"172.18.0.3:80"}, Containers: []string{"api"}}}},
				{Host: "b.test", Protocol: ProtoHTTP, HTTPS: HTTPSAuto, NoRoot: true, Containers: []string{"api"},
					Paths: []PathRoute{{Path: "/api", Protocol: ProtoHTTP, Upstreams: []string{"172.18.0.3:80"}, Containers: []string{"api"}}}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Build(tt.cs, Options{Network: "proxy"})
			if !reflect.DeepEqual(res.Routes, tt.routes) {
				t.Errorf("routes\n got %+v\nwant %+v", res.Routes, tt.routes)
			}
			checkProblems(t, res.Problems, tt.probs)
			if bad := unsafeFields(res); len(bad) > 0 {
				t.Errorf("unsafe fields: %v", bad)
			}
			for _, s := range res.Services {
				for i := range res.Routes {
					r := &res.Routes[i]
					if !contains(s.Hosts, r.Host) {
						continue
					}
					rejected := false
					for _, p := range res.Problems {
						rejected = rejected || p.Container == s.Container && p.Value == r.Host
					}
					if r.Claimed(s) == rejected {
						t.Errorf("Claimed(%s on %s) = %v, but rejected = %v", s.Container, r.Host, r.Claimed(s), rejected)
					}
				}
			}
		})
	}
}

// TestBuildPathsBounded: a vhost holds at most pathprefix.MaxPerHost
// prefixes; the claim on one more is rejected and reported, the others
// keep serving.
func TestBuildPathsBounded(t *testing.T) {
	var cs []store.Container
	for i := range pathprefix.MaxPerHost + 2 {
		cs = append(cs, ctr(fmt.Sprintf("c%03d", i), labels(LabelVhost, "a.test", LabelPath, fmt.Sprintf("/p%03d", i)),
			withIP(fmt.Sprintf("172.18.%d.%d", i/200, 2+i%200)), withRev(int64(i+1))))
	}
	cs = append(cs, ctr("root", vhost("a.test"), withIP("172.19.0.2"), withRev(1000)))
	res := Build(cs, Options{Network: "proxy"})
	if len(res.Routes) != 1 {
		t.Fatalf("routes: %+v", res.Routes)
	}
	r := res.Routes[0]
	if len(r.Paths) != pathprefix.MaxPerHost || r.NoRoot || len(r.Upstreams) != 1 {
		t.Errorf("%d paths (want %d), NoRoot %v, root upstreams %v", len(r.Paths), pathprefix.MaxPerHost, r.NoRoot, r.Upstreams)
	}
	n := 0
	for _, p := range res.Problems {
		if p.Severity == SeverityError && p.Value == "a.test" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d rejected claims, want 2: %v", n, res.Problems)
	}
}

// TestPathOptionsAreTheVhosts: per-site options belong to the vhost, set by
// the container serving "/"; one on a path prefix rejects that container,
// naming the path, and the option.
func TestPathOptionsAreTheVhosts(t *testing.T) {
	c := ctr("api", labels(LabelVhost, "a.test", LabelPath, "/api", LabelSecurityHeaders, "true"))
	_, probs := ParseService(c, Options{})
	if len(probs) != 1 || probs[0].Severity != SeverityError || probs[0].Label != LabelPath || probs[0].Value != "/api" ||
		!strings.Contains(probs[0].Message, "security-headers") {
		t.Fatalf("problems %+v, want one error on %s naming the option", probs, LabelPath)
	}
	root := ctr("root", labels(LabelVhost, "a.test", LabelSecurityHeaders, "true"))
	if _, probs := ParseService(root, Options{}); len(probs) != 0 {
		t.Fatalf("root container: %+v", probs)
	}
}
