package traffic

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// line writes one site's counters in the Lua module's layout for bounds
// 0.1 and 1: requests by class, bytes, failures, request time (sum, 3
// buckets), upstream time (sum, count, 3 buckets).
func line(site string, c2xx, c5xx, fails float64, fast, slow float64) string {
	v := []float64{0, c2xx, 0, 0, c5xx, 100, 200, fails, 0,
		fast*0.05 + slow*0.5, fast, slow, 0,
		0, 0, 0, 0, 0}
	f := make([]string, len(v))
	for i, x := range v {
		f[i] = fmt.Sprint(x)
	}
	return site + "\t" + strings.Join(f, " ")
}

func snapText(boot string, lines ...string) string {
	return "portico-traffic 1\nboot\t" + boot + "\nbuckets\t0.1 1\n" + strings.Join(lines, "\n") + "\n"
}

func TestParse(t *testing.T) {
	s, err := Parse(strings.NewReader(snapText("b1", line("a.example", 3, 1, 2, 3, 1), line("", 5, 0, 0, 5, 0))))
	if err != nil {
		t.Fatal(err)
	}
	a := s.Sites["a.example"]
	if s.Boot != "b1" || len(s.Bounds) != 2 || a.Total() != 4 || a.Requests[4] != 1 || a.ConnectFailures != 2 ||
		a.Request.Count() != 4 || a.Request.Counts[1] != 1 || a.BytesOut != 200 {
		t.Fatalf("parsed %+v", s)
	}
	if s.Sites[""].Total() != 5 {
		t.Fatalf("unmatched: %+v", s.Sites[""])
	}
}

func TestParseRefusesBrokenSnapshots(t *testing.T) {
	for name, text := range map[string]string{
		"empty":          "",
		"header":         "HTTP/1.1 200 OK\n",
		"no bounds":      "portico-traffic 1\nboot\tb\n" + line("a", 1, 0, 0, 1, 0) + "\n",
		"short":          snapText("b", "a.example\t1 2 3"),
		"negative":       snapText("b", strings.Replace(line("a.example", 1, 0, 0, 1, 0), "\t0 1", "\t-1 1", 1)),
		"nan":            snapText("b", strings.Replace(line("a.example", 1, 0, 0, 1, 0), "\t0 1", "\tnan 1", 1)),
		"quote in site":  snapText("b", line(`a"b`, 1, 0, 0, 1, 0)),
		"long site":      snapText("b", line(strings.Repeat("a", 300), 1, 0, 0, 1, 0)),
		"bounds unorder": "portico-traffic 1\nboot\tb\nbuckets\t1 0.1\n",
		"no boot":        "portico-traffic 1\nbuckets\t0.1 1\n",
	} {
		if _, err := Parse(strings.NewReader(text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// fakeSource is nginx's control socket for the pure-logic tests: it
// returns the snapshot set last and records Forget calls.
type fakeSource struct {
	mu     sync.Mutex
	text   string
	err    error
	forgot [][]string
	reads  int
}

func (f *fakeSource) set(text string) { f.mu.Lock(); f.text = text; f.mu.Unlock() }

func (f *fakeSource) Snapshot(context.Context) (Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.err != nil {
		return Snapshot{}, f.err
	}
	return Parse(strings.NewReader(f.text))
}

func (f *fakeSource) Forget(_ context.Context, keep []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgot = append(f.forgot, keep)
	return nil
}

// clock is a settable time for the tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestMonitor(src Source, c *clock) *Monitor {
	return New(Config{Source: src, Now: c.now, MaxAge: time.Second, Interval: 5 * time.Second, Window: time.Minute})
}

func TestCardinalityBoundedByRoutes(t *testing.T) {
	src := &fakeSource{}
	c := &clock{t: time.Unix(1000, 0)}
	m := newTestMonitor(src, c)
	m.SetSites([]string{"a.example", "b.example"})
	src.set(snapText("b1", line("a.example", 3, 0, 0, 3, 0), line("b.example", 1, 0, 0, 1, 0),
		line("gone.example", 9, 0, 0, 9, 0), line("", 7, 0, 0, 7, 0)))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	if n := testutil.CollectAndCount(m, "portico_site_requests_total"); n != 3*5 {
		t.Fatalf("requests series %d, want 15 (a, b, unmatched x 5 classes)", n)
	}
	if v := testutil.ToFloat64(requestsOf(t, m, "(unmatched)", "2xx")); v != 7 {
		t.Fatalf("unmatched 2xx %v", v)
	}
	// Sampling has nginx forget the site that is no route.
	m.Sample(context.Background())
	if len(src.forgot) != 1 || strings.Join(src.forgot[0], ",") == "" || strings.Contains(strings.Join(src.forgot[0], ","), "gone") {
		t.Fatalf("forget calls %v", src.forgot)
	}
	// A route removed: its series go away.
	m.SetSites([]string{"a.example"})
	c.t = c.t.Add(2 * time.Second)
	if n := testutil.CollectAndCount(m, "portico_site_requests_total"); n != 2*5 {
		t.Fatalf("after removing b: %d series, want 10", n)
	}
	if probs, err := testutil.GatherAndLint(reg); err != nil || len(probs) > 0 {
		t.Fatalf("lint: %v %v", probs, err)
	}
	for _, p := range mustGatherNames(t, reg) {
		if strings.Contains(p, "b.example") || strings.Contains(p, "gone.example") {
			t.Fatalf("series of a removed site: %s", p)
		}
	}
}

// requestsOf returns a collector of one requests series.
func requestsOf(t *testing.T, m *Monitor, site, code string) prometheus.Collector {
	t.Helper()
	ch := make(chan prometheus.Metric, 1000)
	m.Collect(ch)
	close(ch)
	for x := range ch {
		if x.Desc() != m.requests {
			continue
		}
		d := metricText(t, x)
		if strings.Contains(d, `"`+site+`"`) && strings.Contains(d, `"`+code+`"`) {
			return constCollector{x}
		}
	}
	t.Fatalf("no series site=%s code=%s", site, code)
	return nil
}

type constCollector struct{ m prometheus.Metric }

func (c constCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.Desc() }
func (c constCollector) Collect(ch chan<- prometheus.Metric) { ch <- c.m }

func metricText(t *testing.T, m prometheus.Metric) string {
	t.Helper()
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatal(err)
	}
	return pb.String()
}

func mustGatherNames(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			out = append(out, mf.GetName()+" "+m.String())
		}
	}
	return out
}

func TestCountersCarryOverNginxRestart(t *testing.T) {
	src := &fakeSource{}
	c := &clock{t: time.Unix(1000, 0)}
	m := newTestMonitor(src, c)
	m.SetSites([]string{"a.example"})
	src.set(snapText("b1", line("a.example", 10, 0, 0, 10, 0)))
	if v := testutil.ToFloat64(requestsOf(t, m, "a.example", "2xx")); v != 10 {
		t.Fatalf("before: %v", v)
	}
	// A reload keeps the boot id: values are nginx's.
	src.set(snapText("b1", line("a.example", 12, 0, 0, 12, 0)))
	c.t = c.t.Add(2 * time.Second)
	if v := testutil.ToFloat64(requestsOf(t, m, "a.example", "2xx")); v != 12 {
		t.Fatalf("after reload: %v", v)
	}
	// A restart: nginx starts from zero, the export carries on.
	src.set(snapText("b2", line("a.example", 3, 0, 0, 3, 0)))
	c.t = c.t.Add(2 * time.Second)
	if v := testutil.ToFloat64(requestsOf(t, m, "a.example", "2xx")); v != 15 {
		t.Fatalf("after restart: %v, want 12+3", v)
	}
	if v := testutil.ToFloat64(constCollector{collectOne(t, m, m.resetsDesc)}); v != 1 {
		t.Fatalf("resets %v", v)
	}
}

func collectOne(t *testing.T, m *Monitor, d *prometheus.Desc) prometheus.Metric {
	t.Helper()
	ch := make(chan prometheus.Metric, 1000)
	m.Collect(ch)
	close(ch)
	for x := range ch {
		if x.Desc() == d {
			return x
		}
	}
	t.Fatalf("no metric %s", d)
	return nil
}

func TestScrapesShareOneRead(t *testing.T) {
	src := &fakeSource{}
	c := &clock{t: time.Unix(1000, 0)}
	m := newTestMonitor(src, c)
	m.SetSites(nil)
	src.set(snapText("b1"))
	for range 5 {
		testutil.CollectAndCount(m)
	}
	if src.reads != 1 {
		t.Fatalf("%d reads of nginx for 5 scrapes within MaxAge", src.reads)
	}
	src.err = fmt.Errorf("socket gone")
	c.t = c.t.Add(2 * time.Second)
	if v := testutil.ToFloat64(constCollector{collectOne(t, m, m.upDesc)}); v != 0 {
		t.Fatalf("up %v after a failed read", v)
	}
}

func TestChartsRatesAndQuantiles(t *testing.T) {
	src := &fakeSource{}
	c := &clock{t: time.Unix(1000, 0)}
	m := newTestMonitor(src, c)
	m.SetSites([]string{"busy.example", "quiet.example"})
	src.set(snapText("b1", line("busy.example", 0, 0, 0, 0, 0), line("quiet.example", 0, 0, 0, 0, 0)))
	m.Sample(context.Background())
	// 5 s later: busy had 100 requests (10 answered 5xx; 98 fast, 2 slow),
	// quiet 5.
	c.t = c.t.Add(5 * time.Second)
	src.set(snapText("b1", line("busy.example", 90, 10, 1, 98, 2), line("quiet.example", 5, 0, 0, 5, 0)))
	m.Sample(context.Background())
	ch := m.Charts()
	if len(ch.Times) != 2 || len(ch.Sites) != 2 || ch.Sites[0].Site != "busy.example" {
		t.Fatalf("charts %+v", ch)
	}
	b := ch.Sites[0]
	if b.Requests != 100 || b.ServerErrors != 10 || b.UpstreamFailures != 1 {
		t.Fatalf("busy totals %+v", b)
	}
	if !math.IsNaN(float64(b.RPS[0])) || float64(b.RPS[1]) != 20 || float64(b.ErrorRate[1]) != 0.1 {
		t.Fatalf("busy rps %v error rate %v", b.RPS, b.ErrorRate)
	}
	// p50: rank 50 of 98 in (0, 0.1]; p99: rank 99 is the first of the 2 in (0.1, 1].
	if p := float64(b.P50[1]); math.Abs(p-0.1*50/98) > 1e-9 {
		t.Fatalf("p50 %v", p)
	}
	if p := float64(b.P99[1]); math.Abs(p-(0.1+0.9*0.5)) > 1e-9 {
		t.Fatalf("p99 %v", p)
	}
	j, err := json.Marshal(ch)
	if err != nil || !strings.Contains(string(j), `"rps":[null,20]`) {
		t.Fatalf("json %s %v", j, err)
	}
	// The quiet site's route goes: it leaves the charts.
	m.SetSites([]string{"busy.example"})
	c.t = c.t.Add(5 * time.Second)
	m.Sample(context.Background())
	if ch := m.Charts(); len(ch.Sites) != 1 {
		t.Fatalf("after removing quiet: %+v", ch.Sites)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	h := newHistory(4)
	for i := range 10 {
		h.add(time.Unix(int64(i*5), 0), map[string]Site{"a": {Requests: [5]float64{0, float64(i)}}}, []float64{1})
	}
	ch := h.charts(5*time.Second, MaxCharts)
	if len(ch.Times) != 4 || ch.Times[0] != 30 || len(ch.Sites[0].RPS) != 4 {
		t.Fatalf("ring %+v", ch)
	}
}
