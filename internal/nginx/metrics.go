package nginx

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the stage's Prometheus metrics. With no registerer they are
// created but never exported.
type metrics struct {
	reloads, failures prometheus.Counter
	render            prometheus.Histogram
	routes, lastApply prometheus.Gauge
	// refused counts the routes the last render left out or failed with.
	refused prometheus.Gauge
	// storeSynced is 1 once the stage has the store's records, 0 while it
	// serves the last good config without them.
	storeSynced prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reloads: prometheus.NewCounter(prometheus.CounterOpts{Name: "portico_nginx_reloads_total",
			Help: "Reloads nginx performed."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "portico_nginx_apply_failures_total",
			Help: "Configs that were not applied (render, nginx -t or reload failed)."}),
		render: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "portico_nginx_render_seconds",
			Help: "Time to render the nginx config.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8)}),
		routes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "portico_nginx_routes",
			Help: "Vhosts in the applied config."}),
		lastApply: prometheus.NewGauge(prometheus.GaugeOpts{Name: "portico_nginx_last_apply_timestamp_seconds",
			Help: "When a config was last applied."}),
		refused: prometheus.NewGauge(prometheus.GaugeOpts{Name: "portico_nginx_error_routes",
			Help: "Routes the last config failed with (left out, or not applied)."}),
		storeSynced: prometheus.NewGauge(prometheus.GaugeOpts{Name: "portico_nginx_store_synced",
			Help: "1 once the stage has read the store, 0 while it serves the last good config without it."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.reloads, m.failures, m.render, m.routes, m.lastApply, m.refused, m.storeSynced} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("nginx metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) observeRender(d time.Duration) { m.render.Observe(d.Seconds()) }

func (m *metrics) applied(routes int) {
	m.routes.Set(float64(routes))
	m.lastApply.SetToCurrentTime()
}
