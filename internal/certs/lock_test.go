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
	got := slices.Sorted(maps.Keys(Locked(entries, "")))
	want := []string{k.CertLock("*.b.test"), k.CertLock("a.test"), k.CertLock("x/y.test")}
	if !slices.Equal(got, want) {
		t.Errorf("Locked = %q, want %q", got, want)
	}
	// The stage's own keys are not another's lock.
	got = slices.Sorted(maps.Keys(Locked(entries, "694d7c1f0a2b3c03")))
	want = []string{k.CertLock("a.test"), k.CertLock("x/y.test")}
	if !slices.Equal(got, want) {
		t.Errorf("Locked with own lease = %q, want %q", got, want)
	}
	if len(Locked(nil, "")) != 0 {
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

// TestOwnStaleLockDoesNotBlock: a lock key of the stage's own session whose
// release failed (left under the lock prefix while the session lives) does
// not stop the stage from ordering that certificate.
func TestOwnStaleLockDoesNotBlock(t *testing.T) {
	e := storetest.Start(t)
	iss := newCounting(localca.New(e.Client, testKeys, localca.Options{}))
	ctx := context.Background()
	putContainer(t, e.Client, "first", "first.test")
	s, _ := startStage(t, e.Client, Config{Local: iss, CheckInterval: time.Hour})
	waitFor(t, "first.test ordered (the stage has its lock session)", func() bool {
		_, ok := bundleFor(t, e.Client, "first.test")
		return ok
	})
	lease := s.ownLockSuffix()
	if lease == "" {
		t.Fatal("no lock session after an order")
	}
	// What a failed Unlock leaves: the key, on the live session's lease.
	var id clientv3.LeaseID
	if _, err := fmt.Sscanf(lease, "%x", &id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Client.Put(ctx, testKeys.CertLock("stale.test")+"/"+lease, "", clientv3.WithLease(id)); err != nil {
		t.Fatal(err)
	}
	putContainer(t, e.Client, "stale", "stale.test")
	waitFor(t, "stale.test ordered despite the stage's own leftover lock key", func() bool {
		_, ok := bundleFor(t, e.Client, "stale.test")
		return ok
	})
	if n := iss.count("stale.test"); n != 1 {
		t.Errorf("stale.test ordered %d times, want once", n)
	}
}
