package nginx

import (
	"fmt"
	"maps"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico/portico/internal/hosts"
	"github.com/portico/portico/internal/store"
)

// hostsView is the stage's view of host liveness (internal/hosts): it
// mirrors the hosts' keys, leaves expired hosts' records out of routing,
// counts hosts and containers by state in metrics, and wakes the stage
// when a stale host reaches its expiry.
type hostsView struct {
	expiry time.Duration // <= 0: hosts never expire
	mirror *store.Mirror // nil until Run
	wake   *time.Timer
	logged map[string]hosts.State // last state logged per host
	// judged is each host's state at the last sync (nil before it):
	// a change of the hosts' keys that changes none is no reason to sync.
	judged map[string]hosts.State

	hostsByState      *prometheus.GaugeVec
	containersByState *prometheus.GaugeVec
}

func newHostsView(expiry time.Duration, reg prometheus.Registerer) (*hostsView, error) {
	if expiry == 0 {
		expiry = hosts.DefaultExpiry
	}
	v := &hostsView{expiry: expiry, logged: map[string]hosts.State{},
		wake: time.NewTimer(time.Hour),
		hostsByState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "portico_nginx_hosts",
			Help: "Docker hosts by liveness: live, stale (heartbeat lost, routes still served) or expired (records no longer routed)."}, []string{"state"}),
		containersByState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "portico_nginx_host_containers",
			Help: "Container records by their host's liveness: stale ones are served, expired ones are left out."}, []string{"state"}),
	}
	v.wake.Stop()
	if reg != nil {
		for _, c := range []prometheus.Collector{v.hostsByState, v.containersByState} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("nginx metrics: %w", err)
			}
		}
	}
	return v, nil
}

// served judges the hosts at now and returns the records to route: all but
// expired hosts' (hosts.Judgement.Serve). Changes of a host's state are
// logged once; the wake timer is set to the next expiry.
func (s *Stage) served(cs []store.Container, now time.Time) []store.Container {
	v := s.hosts
	if v == nil || v.mirror == nil {
		return cs
	}
	snap, _, _ := v.mirror.Snapshot()
	j := hosts.Judge(snap, s.cfg.Keys, now, v.expiry)
	for _, err := range j.Problems {
		s.log.Warn("skipping host liveness record", "err", err)
	}
	v.judged = states(j)
	for host, st := range j.Hosts {
		if v.logged[host] == st.State {
			continue
		}
		if _, known := v.logged[host]; known || st.State != hosts.Live {
			lvl := s.log.Info
			if st.State != hosts.Live {
				lvl = s.log.Warn
			}
			attrs := []any{"host", host, "last_seen", st.LastSeen}
			if !st.ExpiresAt.IsZero() {
				attrs = append(attrs, "expires_at", st.ExpiresAt)
			}
			lvl("docker host "+string(st.State), attrs...)
		}
		v.logged[host] = st.State
	}
	for host := range v.logged {
		if _, ok := j.Hosts[host]; !ok {
			delete(v.logged, host)
		}
	}
	for st, n := range j.Count() {
		v.hostsByState.WithLabelValues(string(st)).Set(float64(n))
	}
	per := map[hosts.State]int{hosts.Live: 0, hosts.Stale: 0, hosts.Expired: 0}
	for _, c := range cs {
		per[j.State(c.Host)]++
	}
	for st, n := range per {
		v.containersByState.WithLabelValues(string(st)).Set(float64(n))
	}
	v.wake.Stop()
	if next := j.NextChange(); !next.IsZero() {
		v.wake.Reset(max(0, next.Sub(now)))
	}
	return j.Serve(cs)
}

// states is each judged host's state.
func states(j hosts.Judgement) map[string]hosts.State {
	m := make(map[string]hosts.State, len(j.Hosts))
	for h, st := range j.Hosts {
		m[h] = st.State
	}
	return m
}

// hostsChanged reports whether the hosts' keys, judged at now, give a
// state other than the last sync's to any host: a reporter's hourly
// last-seen write changes none (the host stays live), nor does a stale
// host's heartbeat-free key churn, so it costs no sync. An expiry is
// caught by the wake timer.
func (s *Stage) hostsChanged(now time.Time) bool {
	v := s.hosts
	if v == nil || v.mirror == nil {
		return false
	}
	if v.judged == nil {
		return true
	}
	snap, _, _ := v.mirror.Snapshot()
	return !maps.Equal(states(hosts.Judge(snap, s.cfg.Keys, now, v.expiry)), v.judged)
}
