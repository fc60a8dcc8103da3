package status

import (
	"time"

	"github.com/portico/portico/internal/certs"
	"github.com/portico/portico/internal/hosts"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// Gather is the whole report from one snapshot of every key under keys'
// prefix: containers, routes, problems and nginx instances (BuildEntries)
// plus the certificates (certs.LoadEntries, certs.Report). `portico status`
// calls it on one read of the prefix; the web page (internal/ui) on its
// store.Mirror's snapshot. It is pure.
func Gather(entries map[string]store.Entry, keys store.Keys, opts routing.Options, now time.Time) Report {
	return GatherExpiry(entries, keys, opts, now, hosts.DefaultExpiry)
}

// GatherExpiry is Gather with hosts judged at now against the host expiry
// (--host-expiry; <= 0: never): stale hosts' containers are marked, expired
// hosts' are listed but not routed, as the nginx stage does.
func GatherExpiry(entries map[string]store.Entry, keys store.Keys, opts routing.Options, now time.Time, expiry time.Duration) Report {
	r := buildEntries(entries, keys, opts, hosts.Judge(entries, keys, now, expiry))
	wanted, bundles, states, problems := certs.LoadEntries(entries, keys)
	for _, p := range problems {
		r.Store = append(r.Store, p.Error())
	}
	r.Certs = certs.Report(wanted, bundles, states, now)
	return r
}
