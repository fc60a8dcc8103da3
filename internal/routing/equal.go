package routing

import "slices"

// Equal reports whether r and o are the same route (reflect.DeepEqual's
// answer, without reflection: the nginx stage compares every route at
// each change to find the ones that changed). TestRouteEqualCoversFields
// fails when a field is added and not compared here.
func (r Route) Equal(o Route) bool {
	return r.Host == o.Host && r.Protocol == o.Protocol && r.Default == o.Default && r.HTTPS == o.HTTPS && r.HSTS == o.HSTS &&
		r.Root == o.Root && r.Dest == o.Dest && r.NoRoot == o.NoRoot && r.Site.Equal(o.Site) &&
		equalStrings(r.Upstreams, o.Upstreams) && equalStrings(r.Containers, o.Containers) &&
		(r.Paths == nil) == (o.Paths == nil) && slices.EqualFunc(r.Paths, o.Paths, PathRoute.Equal)
}

// Equal reports whether p and o are the same path route, as Route.Equal.
func (p PathRoute) Equal(o PathRoute) bool {
	return p.Path == o.Path && p.Strip == o.Strip && p.Dest == o.Dest && p.Protocol == o.Protocol && p.Site.Equal(o.Site) &&
		equalStrings(p.Upstreams, o.Upstreams) && equalStrings(p.Containers, o.Containers)
}

// equalStrings is slices.Equal that, as reflect.DeepEqual, tells nil from
// empty.
func equalStrings(a, b []string) bool { return (a == nil) == (b == nil) && slices.Equal(a, b) }
