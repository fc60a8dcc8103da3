package hosts

import (
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/store"
)

func TestJudge(t *testing.T) {
	k := store.NewKeys("/p")
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ent := func(v string) store.Entry { return store.Entry{Value: []byte(v)} }
	seen := func(host string, at time.Time) store.Entry {
		b, _ := store.Encode(Seen{Host: host, At: at})
		return store.Entry{Value: b}
	}
	beat := func(host string) store.Entry {
		b, _ := store.Encode(Beat{Host: host, AdvertiseAddr: "10.0.0.9", Started: now})
		return store.Entry{Value: b}
	}
	entries := map[string]store.Entry{
		k.HostAlive("live"):      beat("live"),
		k.HostSeen("live"):       seen("live", now.Add(-30*time.Minute)),
		k.HostSeen("stale"):      seen("stale", now.Add(-time.Hour)),
		k.HostSeen("expired"):    seen("expired", now.Add(-25*time.Hour)),
		k.HostSeen("edge"):       seen("edge", now.Add(-24*time.Hour)), // exactly the expiry: expired
		k.HostSeen("future"):     seen("future", now.Add(100*time.Hour)),
		k.HostAlive("badbeat"):   ent("{"),   // a leased key exists: live anyway
		k.HostSeen("badseen"):    ent("[1]"), // skipped, with a problem
		k.HostSeen("liar"):       seen("other", now),
		k.Container("x", "id"):   ent("{}"), // not a liveness key
		k.HostsSeen() + "a%2Fb":  seen("a/b", now),
		k.NginxStatus("n"):       ent("{}"),
		k.HostAlive("aliveonly"): beat("aliveonly"),
	}
	j := Judge(entries, k, now, 24*time.Hour)
	want := map[string]State{"live": Live, "stale": Stale, "expired": Expired, "edge": Expired, "future": Stale, "badbeat": Live, "aliveonly": Live}
	for host, st := range want {
		if got := j.Hosts[host].State; got != st {
			t.Errorf("%s: %s, want %s", host, got, st)
		}
	}
	if len(j.Hosts) != len(want) {
		t.Errorf("hosts %v, want only %v", j.Hosts, want)
	}
	if got := j.Hosts["stale"].ExpiresAt; !got.Equal(now.Add(23 * time.Hour)) {
		t.Errorf("stale expires at %v", got)
	}
	if got := j.Hosts["future"].ExpiresAt; !got.Equal(now.Add(24 * time.Hour)) {
		t.Errorf("a future last-seen counts as now: expires at %v", got)
	}
	if got := j.Hosts["live"]; got.AdvertiseAddr != "10.0.0.9" || !got.ExpiresAt.IsZero() {
		t.Errorf("live: %+v", got)
	}
	if got := j.State("never-judged"); got != Live {
		t.Errorf("a host without liveness keys: %s, want live", got)
	}
	probs := ""
	for _, p := range j.Problems {
		probs += p.Error() + "\n"
	}
	for _, w := range []string{`"/p/hosts/alive/badbeat"`, `"/p/hosts/seen/badseen"`, `"/p/hosts/seen/liar": value names host "other"`, `"/p/hosts/seen/a%2Fb"`} {
		if !strings.Contains(probs, w) {
			t.Errorf("problems do not name %s:\n%s", w, probs)
		}
	}
	if got := j.NextChange(); !got.Equal(now.Add(23 * time.Hour)) {
		t.Errorf("next change %v, want the stale host's expiry", got)
	}
	if n := j.Count(); n[Live] != 3 || n[Stale] != 2 || n[Expired] != 2 {
		t.Errorf("count %v", n)
	}

	cs := []store.Container{{ID: "1", Host: "live"}, {ID: "2", Host: "stale"}, {ID: "3", Host: "expired"}, {ID: "4", Host: "never-judged"}}
	var ids []string
	for _, c := range j.Serve(cs) {
		ids = append(ids, c.ID)
	}
	if strings.Join(ids, ",") != "1,2,4" {
		t.Errorf("served %v, want all but the expired host's", ids)
	}

	// No expiry: stale forever, nothing to wake up for.
	j = Judge(entries, k, now, 0)
	if j.Hosts["expired"].State != Stale || !j.NextChange().IsZero() {
		t.Errorf("expiry 0: %+v next %v", j.Hosts["expired"], j.NextChange())
	}
}
