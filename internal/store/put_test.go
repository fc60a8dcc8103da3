package store_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
)

// countingKV is the real etcd client; it counts transactions and fails the
// test if one compares a value (the value would then travel twice).
type countingKV struct {
	t   *testing.T
	cli *clientv3.Client
	n   atomic.Int64
}

func (c *countingKV) Txn(ctx context.Context) clientv3.Txn {
	c.n.Add(1)
	return checkedTxn{Txn: c.cli.Txn(ctx), t: c.t}
}

type checkedTxn struct {
	clientv3.Txn
	t *testing.T
}

func (x checkedTxn) If(cs ...clientv3.Cmp) clientv3.Txn {
	for _, c := range cs {
		if c.GetCompare().Target == etcdserverpb.Compare_VALUE {
			x.t.Errorf("transaction compares the value of %q", c.KeyBytes())
		}
	}
	return checkedTxn{Txn: x.Txn.If(cs...), t: x.t}
}

// TestPutIfChangedByRevision: a change costs one transaction carrying the
// value once, an unchanged value nothing at all, and a foreign write in
// between is seen, never overwritten blindly.
func TestPutIfChangedByRevision(t *testing.T) {
	e := storetest.Start(t)
	ctx := context.Background()
	kv := &countingKV{t: t, cli: e.Client}
	const key = "/p/containers/h/x"
	get := func() (string, int64) {
		t.Helper()
		r, err := e.Client.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Kvs) == 0 {
			return "", 0
		}
		return string(r.Kvs[0].Value), r.Kvs[0].ModRevision
	}
	put := func(step, value string, known store.Version, wantWrote bool, wantTxns int64) store.Version {
		t.Helper()
		before := kv.n.Load()
		rev0 := mustRev(t, e.Client)
		v, wrote, err := store.PutIfChanged(ctx, kv, key, []byte(value), known)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if wrote != wantWrote {
			t.Errorf("%s: wrote = %v, want %v", step, wrote, wantWrote)
		}
		if n := kv.n.Load() - before; n != wantTxns {
			t.Errorf("%s: %d transactions, want %d", step, n, wantTxns)
		}
		got, modRev := get()
		if got != value {
			t.Errorf("%s: key holds %q, want %q", step, got, value)
		}
		if v != store.VersionOf(modRev, []byte(value)) {
			t.Errorf("%s: returned version %d, key is at %d", step, v.ModRevision, modRev)
		}
		if moved := mustRev(t, e.Client) - rev0; (moved > 0) != wantWrote || moved > 1 {
			t.Errorf("%s: store revision moved by %d", step, moved)
		}
		return v
	}

	v := put("create", "one", store.Version{}, true, 1)
	v = put("unchanged, version known: no round trip", "one", v, false, 0)
	v = put("change: one transaction", "two", v, true, 1)
	put("unchanged, version unknown: one read-only transaction", "two", store.Version{}, false, 1)

	// A foreign writer changes the key behind the writer's back.
	if _, err := e.Client.Put(ctx, key, "foreign"); err != nil {
		t.Fatal(err)
	}
	_, foreignRev := get()
	// The stale version's compare fails; the writer sees "foreign" and only
	// then writes its value, against the foreign revision.
	v = put("stale version, foreign value in between", "three", v, true, 2)
	if v.ModRevision != foreignRev+1 {
		t.Errorf("wrote at %d, want right after the foreign write at %d", v.ModRevision, foreignRev)
	}
	// A foreign writer that already wrote the wanted value: nothing written.
	if _, err := e.Client.Put(ctx, key, "four"); err != nil {
		t.Fatal(err)
	}
	put("stale version, foreign write of the same value", "four", v, false, 1)

	// The key deleted behind the writer's back is created again.
	if _, err := e.Client.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	v, _, err := store.PutIfChanged(ctx, kv, key, []byte("four"), store.VersionOf(v.ModRevision+1, []byte("five")))
	if err != nil || v.ModRevision == 0 {
		t.Fatalf("recreate: %v %v", v, err)
	}
	if got, _ := get(); got != "four" {
		t.Errorf("recreate: key holds %q", got)
	}
}

// TestCreateRevisionComesFromTheKey: a record's value cannot claim an older
// create revision; only the key's metadata sets it.
func TestCreateRevisionComesFromTheKey(t *testing.T) {
	key := store.NewKeys("/p").Container("h1", "abc")
	v := []byte(`{"id":"abc","host":"h1","state":"running","CreateRevision":1,"create_revision":1,"createRevision":1}`)
	c, err := store.DecodeContainerEntry(key, store.Entry{Value: v, ModRevision: 50, CreateRevision: 40})
	if err != nil {
		t.Fatal(err)
	}
	if c.CreateRevision != 40 {
		t.Errorf("CreateRevision = %d, want the key's 40", c.CreateRevision)
	}
	b, err := store.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "" && (contains(b, "40") || contains(b, "evision")) {
		t.Errorf("the create revision is encoded into the value: %s", b)
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }
