package routing

import (
	"reflect"
	"testing"
)

// TestRouteEqualCoversFields: Route.Equal and PathRoute.Equal compare
// every field and agree with reflect.DeepEqual. A new field fails here
// until Equal compares it and the count below is updated.
func TestRouteEqualCoversFields(t *testing.T) {
	if n := reflect.TypeFor[Route]().NumField(); n != 12 {
		t.Errorf("Route has %d fields, Equal compares 12: update Equal", n)
	}
	if n := reflect.TypeFor[PathRoute]().NumField(); n != 7 {
		t.Errorf("PathRoute has %d fields, Equal compares 7: update Equal", n)
	}
	base := Route{Host: "a.test", Protocol: ProtoHTTP, Default: true, HTTPS: HTTPSAuto, HSTS: HSTS{MaxAge: 1}, Root: "/r", Dest: "/d",
		Upstreams: []string{"10.0.0.1:80"}, Containers: []string{"a"}, NoRoot: true,
		Paths: []PathRoute{{Path: "/api/", Strip: true, Dest: "/x", Protocol: ProtoHTTP, Upstreams: []string{"u"}, Containers: []string{"c"}}}}
	base.Site.Redirect.To = "https://x.test/"
	clone := func() Route {
		r := base
		r.Upstreams, r.Containers = append([]string(nil), base.Upstreams...), append([]string(nil), base.Containers...)
		r.Paths = append([]PathRoute(nil), base.Paths...)
		return r
	}
	changes := []func(*Route){
		func(r *Route) { r.Host = "b.test" }, func(r *Route) { r.Protocol = ProtoHTTPS }, func(r *Route) { r.Default = false },
		func(r *Route) { r.HTTPS = HTTPSOff }, func(r *Route) { r.HSTS.Preload = true }, func(r *Route) { r.Root = "" },
		func(r *Route) { r.Dest = "" }, func(r *Route) { r.NoRoot = false }, func(r *Route) { r.Site.Redirect.Code = 302 },
		func(r *Route) { r.Upstreams = nil }, func(r *Route) { r.Upstreams = []string{} }, func(r *Route) { r.Containers[0] = "b" },
		func(r *Route) { r.Paths = nil }, func(r *Route) { r.Paths = []PathRoute{} },
		func(r *Route) { r.Paths[0].Path = "/b/" }, func(r *Route) { r.Paths[0].Strip = false }, func(r *Route) { r.Paths[0].Dest = "" },
		func(r *Route) { r.Paths[0].Protocol = ProtoGRPC }, func(r *Route) { r.Paths[0].Site.Headers.Security = true },
		func(r *Route) { r.Paths[0].Upstreams = nil }, func(r *Route) { r.Paths[0].Containers = []string{"d"} },
	}
	for i, change := range changes {
		r := clone()
		change(&r)
		if r.Equal(base) != reflect.DeepEqual(r, base) || base.Equal(r) != reflect.DeepEqual(base, r) {
			t.Errorf("change %d: Equal %v, DeepEqual %v", i, r.Equal(base), reflect.DeepEqual(r, base))
		}
	}
	if !base.Equal(clone()) {
		t.Error("a Route is not Equal to its copy")
	}
}
