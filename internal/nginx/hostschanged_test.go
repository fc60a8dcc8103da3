package nginx

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/portico/portico/internal/hosts"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
)

// A reporter's hourly last-seen write leaves every host's state as it was:
// the stage is not woken for it (issue 17: with 50 hosts it was a full
// sync of the whole table per write). A heartbeat that goes is a change.
// Real etcd and a real mirror; no nginx.
func TestHostsSeenWriteIsNoChange(t *testing.T) {
	etcd := storetest.Start(t)
	keys := store.NewKeys("/t")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := newHostsView(time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Stage{cfg: Config{Keys: keys}, hosts: v, log: slog.New(slog.DiscardHandler)}
	notify := make(chan struct{}, 1)
	v.mirror = store.NewMirror(etcd.Client, keys.Hosts(), notify, s.log)
	go v.mirror.Run(ctx)

	put := func(key string, val any) int64 {
		t.Helper()
		b, err := json.Marshal(val)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := etcd.Client.Put(ctx, key, string(b))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	mirrored := func(rev int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, r, _ := v.mirror.Snapshot()
			if r >= rev {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("mirror at revision %d, want %d", r, rev)
			}
			<-notify
		}
	}
	now := time.Now()
	put(keys.HostAlive("h1"), hosts.Beat{Host: "h1", Started: now})
	mirrored(put(keys.HostSeen("h1"), hosts.Seen{Host: "h1", At: now}))
	if !s.hostsChanged(now) {
		t.Fatal("no change before the first sync")
	}
	s.served(nil, now) // the sync judges the hosts
	if s.hostsChanged(now) {
		t.Fatal("a change right after the sync")
	}

	mirrored(put(keys.HostSeen("h1"), hosts.Seen{Host: "h1", At: now.Add(time.Hour)}))
	if s.hostsChanged(now.Add(time.Hour)) {
		t.Error("a last-seen write of a live host counts as a change")
	}

	resp, err := etcd.Client.Delete(ctx, keys.HostAlive("h1"))
	if err != nil {
		t.Fatal(err)
	}
	mirrored(resp.Header.Revision)
	if !s.hostsChanged(now.Add(time.Hour)) {
		t.Error("a host whose heartbeat went (stale) counts as no change")
	}
}
