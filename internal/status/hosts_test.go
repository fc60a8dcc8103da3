package status

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/hosts"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// TestHostsShown: containers of a stale host are marked and still routed;
// those of an expired host are marked and not routed; a live host's and an
// unjudged host's are unmarked. The text names each host's state.
func TestHostsShown(t *testing.T) {
	keys := store.NewKeys("/portico")
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	entries := map[string]store.Entry{}
	put := func(key string, v any) {
		b, err := store.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		entries[key] = store.Entry{Value: b}
	}
	for i, h := range []string{"live", "stale", "expired", "unjudged"} {
		c := store.Container{ID: "id-" + h, Name: "web-" + h, Host: h, State: "running",
			Labels:   map[string]string{routing.LabelVhost: h + ".test"},
			Networks: map[string]store.Network{"proxy": {IPv4: "172.18.0." + string(rune('2'+i))}}}
		put(keys.Container(h, c.ID), c)
	}
	put(keys.HostAlive("live"), hosts.Beat{Host: "live", Started: now})
	put(keys.HostSeen("stale"), hosts.Seen{Host: "stale", At: now.Add(-time.Hour)})
	put(keys.HostSeen("expired"), hosts.Seen{Host: "expired", At: now.Add(-48 * time.Hour)})

	r := GatherExpiry(entries, keys, routing.Options{Network: "proxy"}, now, 24*time.Hour)
	state := map[string]string{}
	for _, c := range r.Containers {
		state[c.Node] = c.HostState
	}
	if want := map[string]string{"live": "", "stale": "stale", "expired": "expired", "unjudged": ""}; !equal(state, want) {
		t.Errorf("host states %v, want %v", state, want)
	}
	var routes []string
	for _, rt := range r.Routes {
		routes = append(routes, rt.Host)
	}
	if strings.Join(routes, " ") != "live.test stale.test unjudged.test" {
		t.Errorf("routes %v: want all but the expired host's", routes)
	}
	if r.Counts["stale_hosts"] != 1 || r.Counts["expired_hosts"] != 1 || len(r.Hosts) != 3 {
		t.Errorf("counts %v hosts %v", r.Counts, r.Hosts)
	}
	var out bytes.Buffer
	if err := r.WriteText(&out, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DOCKER HOSTS (3, 2 not live)", "running (host stale)", "running (host expired)",
		"stale    2026-12-06 11:00 (1h ago)  2026-12-07 11:00 (in 23h)", "expired: records no longer routed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}

	// Without a clock (Build), a stale host is marked and none expires.
	r = BuildEntries(entries, keys, routing.Options{Network: "proxy"})
	if len(r.Routes) != 4 {
		t.Errorf("BuildEntries routes %v, want every host's", r.Routes)
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
