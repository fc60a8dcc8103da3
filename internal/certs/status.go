package certs

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/redact"
	"github.com/portico/portico/internal/store"
)

// Certificate conditions in CertStatus.Condition.
const (
	CondValid   = "valid"   // stored and not expired
	CondPending = "pending" // wanted, nothing stored, no failure yet
	CondFailing = "failing" // the last order failed; see Error and RetryAt
	CondExpired = "expired" // stored but expired
	CondUnused  = "unused"  // no container wants it any more
)

// CertStatus is one certificate as `portico status` shows it.
type CertStatus struct {
	Primary string   `json:"primary"`
	Names   []string `json:"names"`
	Issuer  string   `json:"issuer"`
	// Condition is one of the Cond* constants.
	Condition string `json:"condition"`
	// NotAfter is the stored certificate's expiry; zero if none is stored.
	NotAfter    time.Time `json:"not_after,omitzero"`
	NextRenewal time.Time `json:"next_renewal,omitzero"`
	// Error is the last failed order's error, with its time; RetryAt is
	// when the stage tries again; Failures counts consecutive failures.
	Error       string    `json:"error,omitempty"`
	ErrorAt     time.Time `json:"error_at,omitzero"`
	RetryAt     time.Time `json:"retry_at,omitzero"`
	Failures    int       `json:"failures,omitempty"`
	UnusedSince time.Time `json:"unused_since,omitzero"`
}

// Report lists every certificate that is wanted, stored or tracked, sorted
// by primary name. It is pure; Load reads its inputs from etcd.
func Report(wanted []store.WantedCert, bundles []store.CertBundle, states []store.CertState, now time.Time) []CertStatus {
	byP := map[string]*CertStatus{}
	get := func(p string) *CertStatus {
		if byP[p] == nil {
			byP[p] = &CertStatus{Primary: p}
		}
		return byP[p]
	}
	wantedSet := map[string]bool{}
	for _, w := range wanted {
		c := get(w.Primary)
		c.Names, c.Issuer = w.Names, w.Issuer
		wantedSet[w.Primary] = true
	}
	for _, b := range bundles {
		c := get(b.Primary)
		if c.Names == nil {
			c.Names, c.Issuer = b.Names, b.Issuer
		}
		c.NotAfter = b.NotAfter
	}
	for _, st := range states {
		c := get(st.Primary)
		if c.Names == nil {
			c.Names, c.Issuer = st.Names, st.Issuer
		}
		c.NextRenewal, c.UnusedSince = st.NextRenewal, st.UnusedSince
		c.Error, c.ErrorAt, c.RetryAt, c.Failures = redact.String(st.LastError), st.LastErrorAt, st.RetryAt, st.Failures
	}
	out := make([]CertStatus, 0, len(byP))
	for p, c := range byP {
		switch {
		case !wantedSet[p] && (wanted != nil || !c.UnusedSince.IsZero()):
			c.Condition = CondUnused
		case c.Error != "":
			c.Condition = CondFailing
		case c.NotAfter.IsZero():
			c.Condition = CondPending
		case !now.Before(c.NotAfter):
			c.Condition = CondExpired
		default:
			c.Condition = CondValid
		}
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b CertStatus) int { return cmp.Compare(a.Primary, b.Primary) })
	return out
}

// Getter is the part of the etcd client Load uses.
type Getter interface {
	Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error)
}

// Load reads the wanted list, bundles and states Report needs. Records that
// do not decode are skipped and returned as problems.
func Load(ctx context.Context, kv Getter, keys store.Keys) (wanted []store.WantedCert, bundles []store.CertBundle, states []store.CertState, problems []error, err error) {
	resp, err := kv.Get(ctx, keys.Certs(), clientv3.WithPrefix())
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("read %q: %w", keys.Certs(), err)
	}
	entries := make(map[string]store.Entry, len(resp.Kvs))
	for _, e := range resp.Kvs {
		entries[string(e.Key)] = store.Entry{Value: e.Value, ModRevision: e.ModRevision, CreateRevision: e.CreateRevision}
	}
	wanted, bundles, states, problems = LoadEntries(entries, keys)
	return wanted, bundles, states, problems, nil
}

// LoadEntries is Load on a snapshot of the store, such as a store.Mirror's:
// keys outside keys.Certs() are ignored. It is pure and visits the keys in
// order, so its results do not depend on map order.
func LoadEntries(entries map[string]store.Entry, keys store.Keys) (wanted []store.WantedCert, bundles []store.CertBundle, states []store.CertState, problems []error) {
	names := make([]string, 0, len(entries))
	for k := range entries {
		if strings.HasPrefix(k, keys.Certs()) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		v := entries[k].Value
		var derr error
		switch {
		case k == keys.CertsWanted():
			derr = store.Decode(k, v, &wanted)
		case strings.HasPrefix(k, keys.CertData()):
			var b store.CertBundle
			if derr = store.Decode(k, v, &b); derr == nil {
				bundles = append(bundles, b)
			}
		case strings.HasPrefix(k, keys.CertStates()):
			var st store.CertState
			if derr = store.Decode(k, v, &st); derr == nil {
				states = append(states, st)
			}
		}
		if derr != nil {
			problems = append(problems, derr)
		}
	}
	return wanted, bundles, states, problems
}
