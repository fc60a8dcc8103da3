package certs

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	obtained *prometheus.CounterVec
	failures *prometheus.CounterVec
	expiry   *prometheus.GaugeVec
}

// newMetrics creates the stage's metrics and registers them with reg, if
// any. A collector already registered (a second stage in one process) is
// shared.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		obtained: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "portico", Name: "certs_obtained_total",
			Help: "Certificates obtained and stored, by issuer (acme, local).",
		}, []string{"issuer"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "portico", Name: "certs_failures_total",
			Help: "Failed certificate orders, by issuer (acme, local).",
		}, []string{"issuer"}),
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "portico", Name: "certs_expiry_seconds",
			Help: "Expiry of each stored certificate, as a Unix time in seconds, by primary name.",
		}, []string{"cert"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.obtained, err = register(reg, m.obtained); err != nil {
		return nil, err
	}
	if m.failures, err = register(reg, m.failures); err != nil {
		return nil, err
	}
	if m.expiry, err = register(reg, m.expiry); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return c, fmt.Errorf("certs metrics: %w", err)
		}
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
		return c, fmt.Errorf("certs metrics: %w", err)
	}
	return c, nil
}
