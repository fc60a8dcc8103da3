package explain

import (
	"fmt"
	"slices"
	"sort"

	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/redact"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// instances says, per nginx stage, whether its applied config holds the
// route as it is now. The rule: the stage records, with each applied
// config, a digest of every route in it (NginxStatus.AppliedRoutes); the
// route is applied when that digest equals the route's digest now. A route
// the last apply left out, or an apply that failed, is in ErrorRoutes.
func instances(ns []store.NginxStatus, route *routing.Route, host string) []Instance {
	out := []Instance{}
	for _, n := range ns {
		in := Instance{Instance: n.Instance, Config: short(n.Applied)}
		name := host
		if route != nil {
			name = route.Host
		}
		got, listed := n.AppliedRoutes[name]
		switch {
		case slices.Contains(n.ErrorRoutes, name):
			in.State = InstanceError
			in.Detail = "its last apply failed for this route: " + redact.String(n.Error)
			if listed {
				in.Detail += " (it still runs an earlier config that holds the route)"
			}
		case route == nil && listed:
			in.State, in.Detail = InstanceStale, "still runs a config that holds this name, which no route serves now"
		case route == nil:
			in.State, in.Detail = InstanceMissing, "no route to apply"
		case n.Applied == "":
			in.State, in.Detail = InstanceMissing, "has applied no config yet"
		case n.AppliedRoutes == nil && n.Routes > render.MaxStatusRoutes:
			in.State = InstanceUnknown
			in.Detail = fmt.Sprintf("its config has %d routes, more than the %d its status lists; compare its config hash", n.Routes, render.MaxStatusRoutes)
		case n.AppliedRoutes == nil && n.Routes > 0:
			in.State, in.Detail = InstanceUnknown, "its status lists no routes (a stage older than `portico explain`)"
		case !listed:
			in.State, in.Detail = InstanceMissing, "not in its applied config yet"
		case got != render.RouteDigest(*route):
			in.State, in.Detail = InstanceStale, "its config holds an older version of this route: the change is not applied yet"
		default:
			in.State, in.Detail = InstanceApplied, "its config holds the route as it is now"
		}
		if n.Error != "" && in.State != InstanceError {
			in.Detail += "; its last apply reported: " + redact.String(n.Error)
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Instance < out[j].Instance })
	return out
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
