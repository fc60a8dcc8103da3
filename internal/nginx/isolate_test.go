package nginx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/routing"
)

// fakeNginx refuses any route set holding a bad host, or both hosts of a
// conflicting pair. It stands in for `nginx -t` in the search's table
// test; TestStageIsolatesBrokenInclude runs the real one.
type fakeNginx struct {
	bad   map[string]bool
	pairs [][2]string
	err   error // returned instead of a refusal, when set
	calls int
}

func (f *fakeNginx) probe(_ context.Context, rs []routing.Route) error {
	f.calls++
	if f.err != nil {
		return f.err
	}
	in := map[string]bool{}
	for _, r := range rs {
		in[r.Host] = true
		if f.bad[r.Host] {
			return &TestError{Output: "bad " + r.Host, Err: errors.New("exit status 1")}
		}
	}
	for _, p := range f.pairs {
		if in[p[0]] && in[p[1]] {
			return &RenderError{Err: fmt.Errorf("%s and %s collide", p[0], p[1])}
		}
	}
	return nil
}

func hostsN(n int) []routing.Route {
	rs := make([]routing.Route, n)
	for i := range rs {
		rs[i] = route(fmt.Sprintf("h%04d.test", i), "10.0.0.2:80")
	}
	return rs
}

func TestIsolate(t *testing.T) {
	none := func(routing.Route) bool { return false }
	below := func(n int) func(routing.Route) bool { // the first n hosts are in service
		return func(r routing.Route) bool { return r.Host < fmt.Sprintf("h%04d.test", n) }
	}
	for _, tc := range []struct {
		name      string
		n         int
		nginx     fakeNginx
		trusted   func(routing.Route) bool
		budget    int
		wantBad   []string
		maxProbes int
		wantErr   error
	}{
		{"one bad of 16", 16, fakeNginx{bad: map[string]bool{"h0005.test": true}}, none, 24, []string{"h0005.test"}, 5, nil},
		{"one bad of 1000", 1000, fakeNginx{bad: map[string]bool{"h0999.test": true}}, none, 24, []string{"h0999.test"}, 11, nil},
		{"two bad of 100", 100, fakeNginx{bad: map[string]bool{"h0003.test": true, "h0070.test": true}}, none, 24, []string{"h0003.test", "h0070.test"}, 16, nil},
		{"all bad", 4, fakeNginx{bad: map[string]bool{"h0000.test": true, "h0001.test": true, "h0002.test": true, "h0003.test": true}}, none, 24,
			[]string{"h0000.test", "h0001.test", "h0002.test", "h0003.test"}, 10, nil},
		{"a conflicting pair: the first stays", 50, fakeNginx{pairs: [][2]string{{"h0010.test", "h0040.test"}}}, none, 24, []string{"h0040.test"}, 8, nil},
		{"new bad route, service set passes first", 1000, fakeNginx{bad: map[string]bool{"h0995.test": true}}, below(990), 24, []string{"h0995.test"}, 6, nil},
		{"the bad route is in service (a broken include)", 1000, fakeNginx{bad: map[string]bool{"h0007.test": true}}, below(990), 24, []string{"h0007.test"}, 12, nil},
		{"budget spent", 1000, fakeNginx{bad: map[string]bool{"h0001.test": true, "h0500.test": true, "h0900.test": true}}, none, 8, nil, 8, errProbeBudget},
		{"nginx does not run", 10, fakeNginx{err: errors.New("exec: not found")}, none, 24, nil, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iso, err := isolate(context.Background(), hostsN(tc.n), tc.trusted, tc.budget, tc.nginx.probe)
			if tc.nginx.err != nil {
				if !errors.Is(err, tc.nginx.err) {
					t.Fatalf("err %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if iso.Probes > tc.budget {
					t.Fatalf("%d probes, budget %d", iso.Probes, tc.budget)
				}
				return
			}
			if !slices.Equal(iso.Bad, tc.wantBad) {
				t.Errorf("bad %v, want %v", iso.Bad, tc.wantBad)
			}
			if iso.Probes > tc.maxProbes {
				t.Errorf("%d probes, want at most %d", iso.Probes, tc.maxProbes)
			}
			if iso.Probes != tc.nginx.calls {
				t.Errorf("%d probes counted, %d made", iso.Probes, tc.nginx.calls)
			}
			if len(iso.Good)+len(iso.Bad) != tc.n {
				t.Errorf("%d good + %d bad of %d", len(iso.Good), len(iso.Bad), tc.n)
			}
			if len(iso.Good) > 0 {
				if err := tc.nginx.probe(context.Background(), iso.Good); err != nil {
					t.Errorf("the good set fails: %v", err)
				}
			}
			t.Logf("%d routes: %d probes", tc.n, iso.Probes)
		})
	}
}

// A per-vhost include that breaks one vhost (here one in service, so the
// config's hash does not change until the next record does): the next
// change leaves that vhost out, names exactly it in the status, and
// applies the rest, new vhosts included. Every probe is a real nginx -t.
func TestStageIsolatesBrokenInclude(t *testing.T) {
	inc := t.TempDir()
	h := startStage(t, false, func(c *Config) { c.IncludeDir, c.Dynamic = inc, false })
	a := echoServer(t, "A")
	for _, host := range []string{"one.test", "two.test", "three.test"} {
		h.putContainer(strings.TrimSuffix(host, ".test"), a, map[string]string{routing.LabelVhost: host})
	}
	h.want("three.test", 200, "A host=three.test")

	if err := os.MkdirAll(filepath.Join(inc, "two.test"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inc, "two.test", "broken.conf"), []byte("this is not nginx;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.putContainer("four", a, map[string]string{routing.LabelVhost: "four.test"})
	h.want("four.test", 200, "A host=four.test")
	h.want("one.test", 200, "A host=one.test")
	h.want("three.test", 200, "A host=three.test")
	h.want("two.test", 404, "")
	// nginx serves the new config before the stage writes its status.
	h.eventually("status names two.test", func() error {
		if st := h.status(); !slices.Equal(st.ErrorRoutes, []string{"two.test"}) || !strings.Contains(st.Error, "broken.conf") || st.Routes != 3 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	h.logHas("leaving out the routes", "two.test")

	// Another new vhost while two.test is still broken: it goes live too.
	h.putContainer("five", a, map[string]string{routing.LabelVhost: "five.test"})
	h.want("five.test", 200, "A host=five.test")

	// Repaired: the next change brings two.test back and clears the error.
	if err := os.Remove(filepath.Join(inc, "two.test", "broken.conf")); err != nil {
		t.Fatal(err)
	}
	h.putContainer("six", a, map[string]string{routing.LabelVhost: "six.test"})
	h.want("two.test", 200, "A host=two.test")
	h.eventually("status clear", func() error {
		if st := h.status(); st.Error != "" || len(st.ErrorRoutes) != 0 || st.Routes != 6 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
}

// The search on the real nginx at size: 1,000 routes, one of them (in
// service) broken by its include. Reports the probes and the time.
func TestIsolateRealNginx1000Routes(t *testing.T) {
	dir, inc := t.TempDir(), t.TempDir()
	mc := render.MainConf{Prefix: dir, Include: filepath.Join(dir, "portico.conf")}
	for _, d := range mc.Dirs() {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := mc.Install(filepath.Join(dir, "nginx.conf")); err != nil {
		t.Fatal(err)
	}
	a := &Applier{Binary: nginxBin, ConfPath: mc.Include, Supervised: &mc}
	routes := hostsN(1000)
	bad := routes[321].Host
	if err := os.MkdirAll(filepath.Join(inc, bad), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inc, bad, "x.conf"), []byte("location / { return 200; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	settings := render.Settings{HTTPAddrs: []string{freeAddr(t)}, IncludeDir: inc}
	probe := func(ctx context.Context, rs []routing.Route) error {
		conf, err := render.Render(render.Input{Routes: rs, Settings: settings})
		if err != nil {
			return &RenderError{Err: err}
		}
		return a.Check(ctx, conf)
	}
	if err := probe(context.Background(), routes); !refused(err) {
		t.Fatalf("full config: %v, want a refusal", err)
	}
	start := time.Now()
	iso, err := isolate(context.Background(), routes, func(routing.Route) bool { return true }, defaultProbes, probe)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(iso.Bad, []string{bad}) || len(iso.Good) != 999 {
		t.Fatalf("bad %v, %d good", iso.Bad, len(iso.Good))
	}
	t.Logf("1,000 routes, one broken in service: %d nginx -t probes in %s", iso.Probes, time.Since(start).Round(time.Millisecond))
}
