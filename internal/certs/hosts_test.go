package certs

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/portico/portico/internal/certs/localca"
	"github.com/portico/portico/internal/hosts"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
)

// TestExpiredHostsNamesNotWanted: with a real embedded etcd, the names of
// a container on a host past the host expiry leave the wanted list (a
// stale host's stay); they come back when the host is live again.
func TestExpiredHostsNamesNotWanted(t *testing.T) {
	e := storetest.Start(t)
	put := func(key string, v any) {
		t.Helper()
		if _, err := store.PutJSON(context.Background(), e.Client, key, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []string{"stale", "gone"} {
		put(testKeys.Container(h, "id-"+h), store.Container{ID: "id-" + h, Name: "c-" + h, Host: h, State: "running",
			Labels: map[string]string{routing.LabelVhost: h + ".test"}})
	}
	now := time.Now()
	put(testKeys.HostSeen("stale"), hosts.Seen{Host: "stale", At: now.Add(-time.Hour)})
	put(testKeys.HostSeen("gone"), hosts.Seen{Host: "gone", At: now.Add(-48 * time.Hour)})
	iss := newCounting(localca.New(e.Client, testKeys, localca.Options{}))
	s, _ := startStage(t, e.Client, Config{Local: iss, HostExpiry: 24 * time.Hour})

	wanted := func() []string {
		var w []store.WantedCert
		getJSON(t, e.Client, testKeys.CertsWanted(), &w)
		var out []string
		for _, c := range w {
			out = append(out, c.Primary)
		}
		slices.Sort(out)
		return out
	}
	waitFor(t, "stale.test wanted", func() bool { return slices.Equal(wanted(), []string{"stale.test"}) })
	waitPasses(t, s, 2)
	if got := wanted(); !slices.Equal(got, []string{"stale.test"}) {
		t.Errorf("wanted %v, want only the stale host's name", got)
	}
	if iss.count("gone.test") != 0 {
		t.Errorf("an expired host's name was certified")
	}
	put(testKeys.HostAlive("gone"), hosts.Beat{Host: "gone", Started: now})
	waitFor(t, "gone.test wanted once its host is live", func() bool {
		return slices.Equal(wanted(), []string{"gone.test", "stale.test"})
	})
}
