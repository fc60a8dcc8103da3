package traffic

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Source is where the counters come from: nginx's control socket
// (Control).
type Source interface {
	Snapshot(ctx context.Context) (Snapshot, error)
	Forget(ctx context.Context, keep []string) error
}

// Defaults for Config's zero values.
const (
	// DefaultMaxAge is how long a snapshot answers scrapes and samples
	// before nginx is asked again.
	DefaultMaxAge = time.Second
	// DefaultInterval is the history's sampling interval.
	DefaultInterval = 5 * time.Second
	// DefaultWindow is the history's length.
	DefaultWindow = 15 * time.Minute
	readTimeout   = 5 * time.Second
)

// Config configures a Monitor.
type Config struct {
	Source Source
	// MaxAge, Interval, Window: see the defaults.
	MaxAge, Interval, Window time.Duration
	Log                      *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Monitor keeps the sites' counters: it reads nginx's snapshot at most
// once per MaxAge, carries the totals over nginx restarts (so exported
// counters only go up while Portico runs, and Resets says how often nginx
// restarted), exports them (prometheus.Collector) and samples them into
// the history the page charts.
type Monitor struct {
	cfg Config

	fetchMu sync.Mutex // one read of nginx at a time

	mu      sync.Mutex
	sites   map[string]bool // the routes' hosts; nil until SetSites
	at      time.Time       // when totals were read
	readErr error
	boot    string
	bounds  []float64
	last    map[string]Site // this boot's counters
	base    map[string]Site // earlier boots' counters
	resets  int
	hist    *history

	requests, bytesIn, bytesOut, connFail, timeouts *prometheus.Desc
	duration, upstream                              *prometheus.Desc
	resetsDesc, upDesc                              *prometheus.Desc
}

// New returns a Monitor of cfg.Source.
func New(cfg Config) *Monitor {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	site := []string{"site"}
	return &Monitor{cfg: cfg, last: map[string]Site{}, base: map[string]Site{},
		hist: newHistory(int(cfg.Window / cfg.Interval)),
		requests: prometheus.NewDesc("portico_site_requests_total",
			"Requests nginx answered for the site, by status class (code: 1xx..5xx). site=\""+Unmatched+"\": requests no route took.",
			[]string{"site", "code"}, nil),
		bytesIn: prometheus.NewDesc("portico_site_received_bytes_total",
			"Bytes of the site's requests (request line, header and body).", site, nil),
		bytesOut: prometheus.NewDesc("portico_site_sent_bytes_total",
			"Bytes nginx sent to the site's clients.", site, nil),
		connFail: prometheus.NewDesc("portico_site_upstream_connect_failures_total",
			"Tries to reach one of the site's replicas that failed to connect (refused, unreachable).", site, nil),
		timeouts: prometheus.NewDesc("portico_site_upstream_timeouts_total",
			"Tries to reach one of the site's replicas that timed out (connect or response header).", site, nil),
		duration: prometheus.NewDesc("portico_site_request_duration_seconds",
			"Time from the request's first byte to the response's last, as nginx measures it.", site, nil),
		upstream: prometheus.NewDesc("portico_site_upstream_duration_seconds",
			"Time the site's replicas took to answer (all tries of a request), for requests that reached one.", site, nil),
		resetsDesc: prometheus.NewDesc("portico_nginx_traffic_resets_total",
			"nginx restarts seen (its counters started from zero; the exported ones carry on from their last values, and what nginx counted since the last read is lost).", nil, nil),
		upDesc: prometheus.NewDesc("portico_nginx_traffic_up",
			"1 when the last read of nginx's traffic counters worked.", nil, nil),
	}
}

// SetSites sets the routes' hosts: only they (and Unmatched) are exported
// and charted; nginx forgets the others' counters at the next sample.
func (m *Monitor) SetSites(hosts []string) {
	s := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		s[h] = true
	}
	m.mu.Lock()
	m.sites = s
	for k := range m.base {
		if k != "" && !s[k] {
			delete(m.base, k)
		}
	}
	m.mu.Unlock()
}

// refresh reads nginx's counters unless the last read is younger than
// MaxAge.
func (m *Monitor) refresh(ctx context.Context) {
	m.fetchMu.Lock()
	defer m.fetchMu.Unlock()
	m.mu.Lock()
	fresh := !m.at.IsZero() && m.cfg.Now().Sub(m.at) < m.cfg.MaxAge
	m.mu.Unlock()
	if fresh {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	snap, err := m.cfg.Source.Snapshot(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.at = m.cfg.Now()
	if err != nil {
		if m.readErr == nil {
			m.cfg.Log.Warn("cannot read nginx's traffic counters", "err", err)
		}
		m.readErr = err
		return
	}
	m.readErr = nil
	m.observe(snap)
}

// observe takes a snapshot in (m.mu held).
func (m *Monitor) observe(snap Snapshot) {
	if m.boot != "" && snap.Boot != m.boot {
		m.resets++
		m.cfg.Log.Info("nginx restarted: its traffic counters start from zero; the exported totals carry on", "resets", m.resets)
		if slices.Equal(m.bounds, snap.Bounds) {
			for k, v := range m.last {
				m.base[k] = m.base[k].add(v)
			}
		} else {
			m.base = map[string]Site{}
		}
	}
	m.boot, m.bounds, m.last = snap.Boot, snap.Bounds, snap.Sites
}

// totals are the exported sites' counters (m.mu held): the routes' and
// Unmatched (key ""), with earlier boots' added.
func (m *Monitor) totals() map[string]Site {
	out := map[string]Site{}
	pick := func(k string) bool { return k == "" || m.sites[k] }
	for k, v := range m.base {
		if pick(k) {
			out[k] = v
		}
	}
	for k, v := range m.last {
		if pick(k) {
			out[k] = out[k].add(v)
		}
	}
	return out
}

// Describe implements prometheus.Collector.
func (m *Monitor) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.requests, m.bytesIn, m.bytesOut, m.connFail, m.timeouts, m.duration, m.upstream, m.resetsDesc, m.upDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: a scrape reads nginx unless
// the last read is younger than MaxAge.
func (m *Monitor) Collect(ch chan<- prometheus.Metric) {
	m.refresh(context.Background())
	m.mu.Lock()
	tot, bounds, resets, readErr := m.totals(), m.bounds, m.resets, m.readErr
	m.mu.Unlock()
	up := 1.0
	if readErr != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(m.upDesc, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(m.resetsDesc, prometheus.CounterValue, float64(resets))
	for k, s := range tot {
		site := k
		if site == "" {
			site = Unmatched
		}
		for i, c := range Classes {
			ch <- prometheus.MustNewConstMetric(m.requests, prometheus.CounterValue, s.Requests[i], site, c)
		}
		ch <- prometheus.MustNewConstMetric(m.bytesIn, prometheus.CounterValue, s.BytesIn, site)
		ch <- prometheus.MustNewConstMetric(m.bytesOut, prometheus.CounterValue, s.BytesOut, site)
		ch <- prometheus.MustNewConstMetric(m.connFail, prometheus.CounterValue, s.ConnectFailures, site)
		ch <- prometheus.MustNewConstMetric(m.timeouts, prometheus.CounterValue, s.Timeouts, site)
		ch <- constHist(m.duration, s.Request, bounds, site)
		ch <- constHist(m.upstream, s.Upstream, bounds, site)
	}
}

func constHist(d *prometheus.Desc, h Hist, bounds []float64, site string) prometheus.Metric {
	b := make(map[float64]uint64, len(bounds))
	var cum float64
	for i, ub := range bounds {
		if i < len(h.Counts) {
			cum += h.Counts[i]
		}
		b[ub] = uint64(cum)
	}
	return prometheus.MustNewConstHistogram(d, uint64(h.Count()), h.Sum, b, site)
}

// Run samples the counters every Interval into the history and has nginx
// forget removed routes' counters, until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		m.Sample(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Sample reads the counters (unless fresh), adds a point to the history
// and has nginx forget the counters of sites that are no route.
func (m *Monitor) Sample(ctx context.Context) {
	m.refresh(ctx)
	m.mu.Lock()
	if m.readErr == nil && m.boot != "" {
		m.hist.add(m.cfg.Now(), m.totals(), m.bounds)
	}
	var stale, keep []string
	if m.sites != nil {
		for s := range m.last {
			if s != "" && !m.sites[s] {
				stale = append(stale, s)
			}
		}
	}
	if len(stale) > 0 {
		for s := range m.sites {
			keep = append(keep, s)
		}
		// Not asked again for them: the next read shows what nginx kept.
		for _, s := range stale {
			delete(m.last, s)
		}
	}
	m.mu.Unlock()
	if len(stale) > 0 {
		fctx, cancel := context.WithTimeout(ctx, readTimeout)
		defer cancel()
		if err := m.cfg.Source.Forget(fctx, keep); err != nil {
			m.cfg.Log.Warn("nginx did not forget removed routes' traffic counters", "routes", len(stale), "err", err)
		}
	}
}

// Charts returns the history for the page.
func (m *Monitor) Charts() Charts {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.hist.charts(m.cfg.Interval, MaxCharts)
	if m.readErr != nil {
		c.Error = m.readErr.Error()
	}
	return c
}
