package store_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
)

func TestKeys(t *testing.T) {
	for _, p := range []string{"/portico", "portico", "/portico/", "portico/"} {
		k := store.NewKeys(p)
		if got := k.Container("h1", "abc"); got != "/portico/containers/h1/abc" {
			t.Errorf("prefix %q: Container = %q", p, got)
		}
	}
	k := store.NewKeys("/p")
	if got := k.Container("a/b", "c"); strings.Count(got, "/") != 4 {
		t.Errorf("slash in host must not add a segment: %q", got)
	}
	host, id, ok := store.ParseContainerKey(k.Container("h1", "abc"))
	if !ok || host != "h1" || id != "abc" {
		t.Errorf("ParseContainerKey = %q %q %v", host, id, ok)
	}
	if _, _, ok := store.ParseContainerKey("/p/containers/h1"); ok {
		t.Error("ParseContainerKey accepted a key without id")
	}
}

func TestDecodeContainerRejectsForeignRecords(t *testing.T) {
	key := store.NewKeys("/p").Container("h1", "abc")
	for name, v := range map[string]string{
		"garbage":    "{not json",
		"wrong type": `{"id": 5}`,
		"no id":      `{"name": "x"}`,
		"other key":  `{"id": "zzz", "host": "h1"}`,
		"huge":       `{"id":"abc","host":"h1","name":"` + strings.Repeat("x", store.MaxValueBytes) + `"}`,
	} {
		if _, err := store.DecodeContainer(key, []byte(v)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), key) {
			t.Errorf("%s: error %q does not name the key", name, err)
		}
	}
	if _, err := store.DecodeContainer(key, []byte(`{"id":"abc","host":"h1","state":"running"}`)); err != nil {
		t.Errorf("valid record: %v", err)
	}
}

func TestPutIfChangedAndMirror(t *testing.T) {
	e := storetest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	notify := make(chan struct{}, 1)
	m := store.NewMirror(e.Client, "/p/", notify, slog.Default())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	waitFor := func(what string, ok func(map[string]store.Entry) bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			snap, _, synced := m.Snapshot()
			if synced && ok(snap) {
				return
			}
			select {
			case <-notify:
			case <-time.After(50 * time.Millisecond):
			case <-deadline:
				t.Fatalf("timed out waiting for %s; have %v", what, snap)
			}
		}
	}
	waitFor("first list", func(s map[string]store.Entry) bool { return len(s) == 0 })

	wrote, err := store.PutJSON(ctx, e.Client, "/p/a", 1)
	if err != nil || !wrote {
		t.Fatalf("first put: wrote=%v err=%v", wrote, err)
	}
	rev := mustRev(t, e.Client)
	wrote, err = store.PutJSON(ctx, e.Client, "/p/a", 1)
	if err != nil || wrote {
		t.Fatalf("same put: wrote=%v err=%v", wrote, err)
	}
	if got := mustRev(t, e.Client); got != rev {
		t.Fatalf("unchanged put moved the revision %d -> %d", rev, got)
	}
	// The mirror carries each key's create revision (who owns a vhost).
	waitFor("a=1 with its create revision", func(s map[string]store.Entry) bool {
		return string(s["/p/a"].Value) == "1" && s["/p/a"].CreateRevision == rev
	})

	if _, err := e.Client.Delete(ctx, "/p/a"); err != nil {
		t.Fatal(err)
	}
	waitFor("a deleted", func(s map[string]store.Entry) bool { _, ok := s["/p/a"]; return !ok })

	// Compaction past the watch forces a re-list; the mirror must converge.
	for i := range 5 {
		if _, err := store.PutJSON(ctx, e.Client, "/p/b", i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Client.Compact(ctx, mustRev(t, e.Client)); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutJSON(ctx, e.Client, "/p/c", "x"); err != nil {
		t.Fatal(err)
	}
	waitFor("b=4 and c", func(s map[string]store.Entry) bool {
		b := s["/p/b"]
		return string(b.Value) == "4" && string(s["/p/c"].Value) == `"x"` &&
			b.CreateRevision != 0 && b.CreateRevision < b.ModRevision
	})
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Run returned %v", err)
	}
}

func mustRev(t *testing.T, c *clientv3.Client) int64 {
	t.Helper()
	r, err := c.Get(context.Background(), "/p/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return r.Header.Revision
}
