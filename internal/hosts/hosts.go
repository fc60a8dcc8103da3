// Package hosts tells live Docker hosts from gone ones without flapping.
//
// Each reporter keeps two keys (store.Keys.HostAlive, HostSeen):
//
//   - a heartbeat bound to an etcd lease of TTL (default 10 s), kept alive
//     by the etcd client (a keepalive every TTL/3). It vanishes when the
//     lease expires: the host, its reporter or its link to etcd has been
//     gone for a TTL. etcd's new leader renews every lease in full when it
//     takes over, so a leader election never expires one;
//   - a last-seen time, not leased, written when the heartbeat is (re)made
//     and then every SeenEvery (default 1 h): at rest one write per host an
//     hour.
//
// Judge turns the keys into a State per host: live (heartbeat present),
// stale (heartbeat gone, last seen less than the expiry ago) or expired.
// Stale hosts' routes stay served and are marked; expired hosts' records
// are left out of routing by the stages that read them (Serve). Nothing
// deletes another host's records: only a host's own reporter may write
// them (store roles); a host that comes back reconciles its own records.
//
// A host with container records but no liveness keys at all (a reporter
// older than this package) is not judged: it counts as live.
package hosts

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/portico/portico/internal/store"
)

// Defaults.
const (
	// DefaultTTL is the heartbeat lease's TTL: a host is stale this long
	// after it was last heard from. Ten election timeouts of etcd's
	// default (1 s), so a leader change, which renews leases anyway, is
	// far inside it.
	DefaultTTL = 10 * time.Second
	// DefaultSeenEvery is how often a live reporter rewrites its
	// last-seen key.
	DefaultSeenEvery = time.Hour
	// DefaultExpiry is how long after it was last seen a host's records
	// stop being routed (--host-expiry).
	DefaultExpiry = 24 * time.Hour
)

// Beat is the value of a host's heartbeat key.
type Beat struct {
	Host string `json:"host"`
	// AdvertiseAddr is the reporter's --advertise-addr, "" for none.
	AdvertiseAddr string `json:"advertise_addr,omitempty"`
	// Started is when this heartbeat was made (the reporter started or
	// its lease was lost and granted again).
	Started time.Time `json:"started"`
}

// Seen is the value of a host's last-seen key.
type Seen struct {
	Host string    `json:"host"`
	At   time.Time `json:"at"`
}

// State of a host.
type State string

const (
	Live    State = "live"
	Stale   State = "stale"   // heartbeat gone: routes served and marked
	Expired State = "expired" // gone for longer than the expiry: not routed
)

// Status is one host's judged state.
type Status struct {
	Host  string `json:"host"`
	State State  `json:"state"`
	// LastSeen is the host's last-seen time (zero if never written).
	LastSeen time.Time `json:"last_seen,omitzero"`
	// ExpiresAt is when a stale host's records stop being routed; zero
	// when live, or when hosts never expire.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// AdvertiseAddr is from the heartbeat, when live.
	AdvertiseAddr string `json:"advertise_addr,omitempty"`
}

// Judgement is the state of every host that has liveness keys.
type Judgement struct {
	Hosts map[string]Status
	// Problems are keys that did not decode, one error each naming the key.
	Problems []error
}

// Judge decides each host's state from the keys under keys.Hosts() in
// entries (other keys are ignored) at now. expiry <= 0 means hosts never
// expire (they stay stale). A last-seen time in the future counts as now.
// It is pure.
func Judge(entries map[string]store.Entry, keys store.Keys, now time.Time, expiry time.Duration) Judgement {
	j := Judgement{Hosts: map[string]Status{}}
	alive := map[string]Beat{}
	seen := map[string]time.Time{}
	for _, k := range slices.Sorted(maps.Keys(entries)) {
		e := entries[k]
		switch {
		case strings.HasPrefix(k, keys.HostsAlive()):
			host := strings.TrimPrefix(k, keys.HostsAlive())
			var b Beat
			if err := decode(k, e.Value, host, &b, &b.Host); err != nil {
				j.Problems = append(j.Problems, err)
				// A heartbeat key exists: its lease is live,
				// whatever its value says.
			}
			alive[host] = b
		case strings.HasPrefix(k, keys.HostsSeen()):
			host := strings.TrimPrefix(k, keys.HostsSeen())
			var s Seen
			if err := decode(k, e.Value, host, &s, &s.Host); err != nil {
				j.Problems = append(j.Problems, err)
				continue
			}
			seen[host] = s.At
		}
	}
	for host, b := range alive {
		j.Hosts[host] = Status{Host: host, State: Live, LastSeen: seen[host], AdvertiseAddr: b.AdvertiseAddr}
	}
	for host, at := range seen {
		if _, ok := alive[host]; ok {
			continue
		}
		st := Status{Host: host, State: Stale, LastSeen: at}
		if at.After(now) {
			at = now
		}
		if expiry > 0 {
			st.ExpiresAt = at.Add(expiry)
			if !now.Before(st.ExpiresAt) {
				st.State = Expired
			}
		}
		j.Hosts[host] = st
	}
	return j
}

// decode reads a liveness value whose host must be the key's.
func decode(key string, value []byte, host string, v any, got *string) error {
	if host == "" || strings.Contains(host, "/") {
		return fmt.Errorf("key %q: not a host liveness key", key)
	}
	if err := store.Decode(key, value, v); err != nil {
		return err
	}
	if *got != host {
		return fmt.Errorf("key %q: value names host %q", key, store.Last(*got))
	}
	return nil
}

// State is the state of host: Live for a host that is not judged.
func (j Judgement) State(host string) State {
	if s, ok := j.Hosts[host]; ok {
		return s.State
	}
	return Live
}

// Serve returns the records routing should see: all but those of expired
// hosts, in order. It reuses cs when nothing is left out.
func (j Judgement) Serve(cs []store.Container) []store.Container {
	if !slices.ContainsFunc(cs, func(c store.Container) bool { return j.State(c.Host) == Expired }) {
		return cs
	}
	out := make([]store.Container, 0, len(cs))
	for _, c := range cs {
		if j.State(c.Host) != Expired {
			out = append(out, c)
		}
	}
	return out
}

// NextChange is the earliest time a stale host expires, after which Judge
// must run again even if no key changed; zero when none will.
func (j Judgement) NextChange() time.Time {
	var next time.Time
	for _, s := range j.Hosts {
		if s.State == Stale && !s.ExpiresAt.IsZero() && (next.IsZero() || s.ExpiresAt.Before(next)) {
			next = s.ExpiresAt
		}
	}
	return next
}

// Count returns how many hosts are in each state.
func (j Judgement) Count() map[State]int {
	n := map[State]int{Live: 0, Stale: 0, Expired: 0}
	for _, s := range j.Hosts {
		n[s.State]++
	}
	return n
}
