package certs

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/portico/portico/internal/certs/localca"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
)

func TestLocked(t *testing.T) {
	k := store.NewKeys("/p")
	entries := map[string]store.Entry{
		k.CertLock("a.test") + "/694d7c1f0a2b3c01":   {},
		k.CertLock("a.test") + "/694d7c1f0a2b3c02":   {}, // a waiter
		k.CertLock("*.b.test") + "/694d7c1f0a2b3c03": {},
		k.CertLock("x/y.test") + "/694d7c1f0a2b3c04": {}, // a slash in the name is escaped
	}
	got := slices.Sorted(maps.Keys(Locked(entries)))
	want := []string{k.CertLock("*.b.test"), k.CertLock("a.test"), k.CertLock("x/y.test")}
	if !slices.Equal(got, want) {
		t.Errorf("Locked = %q, want %q", got, want)
	}
	if len(Locked(nil)) != 0 {
		t.Error("Locked(nil) not empty")
	}
}

// TestLockHeldElsewhereTakesNoWorker: certificates whose locks another
// stage holds (its orders running) leave the stage's only worker free, so
// a new certificate is ordered at once; when the other stage stops without
// storing anything (its lease revoked), the stage orders the certificates
// it left, each once, without waiting for its check interval.
func TestLockHeldElsewhereTakesNoWorker(t *testing.T) {
	e := storetest.Start(t)
	iss := newCounting(localca.New(e.Client, testKeys, localca.Options{}))
	ctx := context.Background()
	other, err := concurrency.NewSession(e.Client, concurrency.WithTTL(30))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	const held = 3
	for i := range held {
		name := fmt.Sprintf("held%d.test", i)
		if err := concurrency.NewMutex(other, testKeys.CertLock(name)).Lock(ctx); err != nil {
			t.Fatal(err)
		}
		putContainer(t, e.Client, fmt.Sprint(i), name)
	}
	s, _ := startStage(t, e.Client, Config{Local: iss, Workers: 1, CheckInterval: time.Hour})
	waitPasses(t, s, 3)
	putContainer(t, e.Client, "free", "free.test")
	waitFor(t, "free.test ordered while the others are locked elsewhere", func() bool {
		_, ok := bundleFor(t, e.Client, "free.test")
		return ok
	})
	for i := range held {
		if n := iss.count(fmt.Sprintf("held%d.test", i)); n != 0 {
			t.Errorf("held%d.test ordered %d times under another stage's lock", i, n)
		}
	}

	// The other stage goes away without a certificate: its locks go with
	// its lease, and the stage orders what it left.
	if _, err := e.Client.Revoke(ctx, other.Lease()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the certificates left by the other stage ordered", func() bool {
		r, err := e.Client.Get(ctx, testKeys.CertData(), clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && r.Count == held+1
	})
	for i := range held {
		if n := iss.count(fmt.Sprintf("held%d.test", i)); n != 1 {
			t.Errorf("held%d.test ordered %d times, want once", i, n)
		}
	}
}
