package nginx

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/portico/portico/internal/routing"
)

// defaultProbes bounds the `nginx -t` runs spent finding the routes that
// make a config fail. One bad route among n costs about log2(n) probes
// (1,000 routes: 10), plus one for the routes already in service.
const defaultProbes = 24

// RenderError is Render refusing the input, as opposed to failing to write
// or run something: like a *TestError, it is the config's fault.
type RenderError struct{ Err error }

func (e *RenderError) Error() string { return "render: " + e.Err.Error() }
func (e *RenderError) Unwrap() error { return e.Err }

// refused reports whether err is the config's fault (Render or nginx -t
// refused it), as opposed to a failure to run nginx or write a file.
func refused(err error) bool {
	var te *TestError
	var re *RenderError
	return errors.As(err, &te) || errors.As(err, &re)
}

// errProbeBudget ends an isolation that ran out of probes.
var errProbeBudget = errors.New("probe budget spent")

// isolation is what isolate found.
type isolation struct {
	Good   []routing.Route // a route set whose config passed a probe (or is empty)
	Bad    []string        // hosts of the routes left out, sorted
	Probes int
}

// isolate finds the routes that make a config fail, given that the config
// of all routes failed. probe renders a route set and runs `nginx -t` on it;
// it returns nil, a refusal (see refused), or another error, which ends the
// search. trusted marks the routes of the config in service: they are
// probed together first, and if they pass, only the others are searched.
//
// The search is a binary search for the shortest failing prefix of the
// suspects (next to the routes accepted so far): its last route is bad,
// the routes before it are accepted, and the search goes on with the rest
// unless the rest passes. Each bad route costs about log2(n)+1 probes (one
// of 1,000: 11), so conflicting pairs keep the first route. Probes are
// bounded by budget; past
// it isolate returns errProbeBudget (the caller keeps the config in
// service). It is pure but for probe.
func isolate(ctx context.Context, routes []routing.Route, trusted func(routing.Route) bool, budget int,
	probe func(context.Context, []routing.Route) error) (isolation, error) {
	var iso isolation
	var accepted []routing.Route
	try := func(rs []routing.Route) (bool, error) {
		if iso.Probes >= budget {
			return false, errProbeBudget
		}
		iso.Probes++
		err := probe(ctx, rs)
		switch {
		case err == nil:
			return true, nil
		case refused(err):
			return false, nil
		default:
			return false, err
		}
	}
	suspects := routes
	var old, fresh []routing.Route
	for _, r := range routes {
		if trusted(r) {
			old = append(old, r)
		} else {
			fresh = append(fresh, r)
		}
	}
	if len(old) > 0 && len(fresh) > 0 {
		ok, err := try(old)
		if err != nil {
			return iso, err
		}
		if ok {
			accepted, suspects = old, fresh
		}
	}
	rest, knownBad := suspects, true // the full set failed
	for len(rest) > 0 {
		if !knownBad {
			ok, err := try(append(slices.Clip(accepted), rest...))
			if err != nil {
				return iso, err
			}
			if ok {
				accepted = append(accepted, rest...)
				break
			}
		}
		// The shortest failing prefix: accepted+rest[:lo] passes (lo = 0:
		// accepted passed before), accepted+rest[:hi] fails.
		lo, hi := 0, len(rest)
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			ok, err := try(append(slices.Clip(accepted), rest[:mid]...))
			if err != nil {
				return iso, err
			}
			if ok {
				lo = mid
			} else {
				hi = mid
			}
		}
		accepted = append(accepted, rest[:hi-1]...)
		iso.Bad = append(iso.Bad, rest[hi-1].Host)
		rest, knownBad = rest[hi:], false
	}
	iso.Good = accepted
	slices.Sort(iso.Bad)
	return iso, nil
}

// isolated is the stage's memory of the last isolation, so the same input
// is not searched again.
type isolated struct {
	key  string // hash of the full render, or its render error
	iso  isolation
	err  error // the full config's error
	ierr error // isolate's own error, if it gave up
}

// without returns routes minus the hosts in bad (sorted).
func without(routes []routing.Route, bad []string) []routing.Route {
	out := make([]routing.Route, 0, len(routes))
	for _, r := range routes {
		if _, found := slices.BinarySearch(bad, r.Host); !found {
			out = append(out, r)
		}
	}
	return out
}

// refusedError is the status error for a config whose bad routes were left
// out.
func refusedError(bad []string, err error) error {
	return fmt.Errorf("left out %d route(s) the config fails with: %v: %w", len(bad), bad, err)
}
