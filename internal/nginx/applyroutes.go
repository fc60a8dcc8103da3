package nginx

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/routing"
)

// outcome is what applyRoutes did.
type outcome struct {
	res Result
	// applied is the route set of the config now in place; nil when the
	// config in place did not change hands (err says why).
	applied []routing.Route
	// errRoutes are the hosts err concerns: the routes left out, or every
	// route when nothing was applied.
	errRoutes []string
	err       error
}

// applyRoutes renders routes and applies the config. When Render or
// `nginx -t` refuses it, it finds the routes that make it fail (isolate,
// each probe a real `nginx -t`), applies the others and reports the ones
// left out. The search runs once per distinct input: the same render is
// answered from memory.
func (s *Stage) applyRoutes(ctx context.Context, routes []routing.Route, refs []render.CertRef) outcome {
	render := func(rs []routing.Route) ([]byte, error) {
		start := time.Now()
		conf, err := render.Render(render.Input{Routes: rs, Certs: refs, Settings: s.settings})
		s.m.observeRender(time.Since(start))
		if err != nil {
			return nil, &RenderError{Err: err}
		}
		return conf, nil
	}
	all := hostsOf(routes)
	conf, err := render(routes)
	key := "render error: "
	if err == nil {
		key = Hash(conf)
	} else {
		key += err.Error()
	}
	if s.iso == nil || s.iso.key != key {
		s.iso = nil
		if err == nil {
			res, aerr := s.applier.Apply(ctx, conf)
			if aerr == nil {
				s.trust(routes)
				return outcome{res: res, applied: routes}
			}
			if !refused(aerr) {
				return outcome{res: res, errRoutes: all, err: aerr}
			}
			err = aerr
		}
		full, searched := err, time.Now()
		iso, ierr := isolate(ctx, routes, s.trusted, s.probes(), func(ctx context.Context, rs []routing.Route) error {
			c, err := render(rs)
			if err != nil {
				return err
			}
			return s.applier.Check(ctx, c)
		})
		if ierr != nil && ierr != errProbeBudget {
			// nginx could not run: not the config's fault, retry later.
			return outcome{errRoutes: all, err: fmt.Errorf("finding the routes the config fails with: %w", ierr)}
		}
		s.iso = &isolated{key: key, iso: iso, err: full, ierr: ierr}
		if ierr == nil {
			s.log.Error("nginx config refused; leaving out the routes it fails with and applying the others",
				"left_out", iso.Bad, "probes", iso.Probes, "took", time.Since(searched).Round(time.Millisecond), "err", full)
		}
	}
	if s.iso.ierr != nil {
		return outcome{errRoutes: all, err: fmt.Errorf("%w (%s finding the failing routes, after %d nginx -t runs)", s.iso.err, s.iso.ierr, s.iso.iso.Probes)}
	}
	good := without(routes, s.iso.iso.Bad)
	if conf, err = render(good); err != nil {
		return outcome{errRoutes: all, err: err}
	}
	res, err := s.applier.Apply(ctx, conf)
	if err != nil {
		return outcome{res: res, errRoutes: all, err: err}
	}
	s.trust(good)
	if len(s.iso.iso.Bad) == 0 {
		return outcome{res: res, applied: good}
	}
	return outcome{res: res, applied: good, errRoutes: s.iso.iso.Bad, err: refusedError(s.iso.iso.Bad, s.iso.err)}
}

func (s *Stage) probes() int {
	if s.cfg.IsolateProbes > 0 {
		return s.cfg.IsolateProbes
	}
	return defaultProbes
}

// trust remembers the routes of the config in place: the next search
// probes them together first.
func (s *Stage) trust(routes []routing.Route) {
	s.inService = make(map[string]routing.Route, len(routes))
	for _, r := range routes {
		s.inService[r.Host] = r
	}
}

func (s *Stage) trusted(r routing.Route) bool {
	old, ok := s.inService[r.Host]
	return ok && reflect.DeepEqual(old, r)
}

func hostsOf(routes []routing.Route) []string {
	hosts := make([]string, len(routes))
	for i, r := range routes {
		hosts[i] = r.Host
	}
	return hosts
}
