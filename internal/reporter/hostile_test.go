package reporter_test

// What a record may say: the real Docker daemon, a real embedded etcd.

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/reporter"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
)

// TestHostileRecords: a container with a 1.7 MB unrelated label is recorded
// without it; one whose portico labels exceed the cap is recorded as
// rejected; and while one container's put keeps failing, the others are
// recorded and a removed container's record is deleted. No unrelated label
// reaches etcd.
func TestHostileRecords(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()

	// The record of a container removed while no reporter ran: it must go,
	// or its vhost stays routed to an address Docker may reuse.
	stale := store.Container{ID: "5tale", Name: "gone", Host: h.host, State: "running",
		Labels: map[string]string{"portico.vhost": "gone.test"}, Networks: map[string]store.Network{"proxy": {IPv4: "172.18.0.99"}}}
	if _, err := store.PutJSON(ctx, h.etcd.Client, keys.Container(h.host, stale.ID), stale); err != nil {
		t.Fatal(err)
	}
	blob := strings.Repeat("B", 1700<<10) // Docker accepts it; etcd would refuse the request
	huge := h.env.Run(t, dockertest.RunOptions{Name: "huge", NoStart: true, Labels: map[string]string{
		"portico.vhost": "huge.test", "blob": blob, "org.example.secret": "unrelated-value"}})
	overVhost := strings.TrimSpace(strings.Repeat("a.test ", 10000)) // 70 KB of portico labels
	over := h.env.Run(t, dockertest.RunOptions{Name: "over", NoStart: true, Labels: map[string]string{"portico.vhost": overVhost}})
	victim := h.env.Run(t, dockertest.RunOptions{Name: "victim", NoStart: true, Labels: map[string]string{"portico.vhost": "victim.test"}})
	plain := h.env.Run(t, dockertest.RunOptions{Name: "plain", NoStart: true, Labels: map[string]string{"portico.vhost": "plain.test", "com.chameth.proxy": "80"}})

	kv := &keyFailKV{Client: h.etcd.Client, key: keys.Container(h.host, victim)}
	kv.broken.Store(true)
	filter := dockertest.RunLabel + "=" + h.env.RunID
	r, err := reporter.New(reporter.Config{Host: h.host, Keys: keys, Metrics: prometheus.NewRegistry(), Labels: []string{filter}},
		kv, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// Every resync fails on the victim's put, yet does its other work.
	h.waitGone(t, wait, stale.ID)
	labels := func(want map[string]string) func(store.Container) error {
		return func(c store.Container) error {
			if c.Rejected != "" || !reflect.DeepEqual(c.Labels, want) {
				return fmt.Errorf("rejected %q, labels %v; want labels %v", c.Rejected, c.Labels, want)
			}
			return nil
		}
	}
	h.waitRecord(t, plain, "plain record", labels(map[string]string{"portico.vhost": "plain.test", "com.chameth.proxy": "80", dockertest.RunLabel: h.env.RunID}))
	h.waitRecord(t, huge, "huge container recorded without its unrelated labels", labels(map[string]string{"portico.vhost": "huge.test", dockertest.RunLabel: h.env.RunID}))
	rejected := func(name string) func(store.Container) error {
		return func(c store.Container) error {
			if !strings.Contains(c.Rejected, "exceeds the reporter's cap") || c.Name != h.env.Name(name) || c.State != "created" || c.Labels != nil || c.Image != "" {
				return fmt.Errorf("record %+v, want a small rejected record", c)
			}
			return nil
		}
	}
	h.waitRecord(t, over, "over-cap container recorded as rejected", rejected("over"))
	if kv.failures.Load() == 0 {
		t.Fatal("the victim's put was never tried")
	}
	if _, ok := h.record(t, victim); ok {
		t.Fatal("victim recorded while its puts fail")
	}
	select {
	case <-r.Synced():
		t.Fatal("Synced closed while a put fails")
	default:
	}

	// The victim's put works again: the retried resync completes.
	kv.broken.Store(false)
	h.waitRecordWithin(t, catchUp, victim, "victim after its puts work", labels(map[string]string{"portico.vhost": "victim.test", dockertest.RunLabel: h.env.RunID}))
	select {
	case <-r.Synced():
	case <-time.After(catchUp):
		t.Fatal("Synced not closed after the failing put recovered")
	}

	// The event path caps too, and records grow and shrink past the cap.
	late := h.env.Run(t, dockertest.RunOptions{Name: "late", Labels: map[string]string{"portico.vhost": overVhost, "blob": blob}})
	h.waitRecord(t, late, "container created after the sync recorded as rejected", func(c store.Container) error {
		if c.Rejected == "" || c.State != "running" {
			return fmt.Errorf("record %+v", c)
		}
		return nil
	})
	h.env.Remove(t, over)
	h.waitGone(t, wait, over)

	// Nothing unrelated ever reached etcd, and every record is small.
	resp, err := h.etcd.Client.Get(ctx, keys.HostContainers(h.host), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range resp.Kvs {
		t.Logf("%s: %d bytes", e.Key, len(e.Value))
		if len(e.Value) > reporter.MaxRecordBytes {
			t.Errorf("%s: %d bytes, over the cap", e.Key, len(e.Value))
		}
		for _, bad := range []string{"blob", "BBBB", "org.example.secret", "unrelated-value"} {
			if strings.Contains(string(e.Value), bad) {
				t.Errorf("%s holds %q", e.Key, bad)
			}
		}
	}
	if got := len(resp.Kvs); got != 4 {
		t.Errorf("%d records, want 4 (huge, victim, plain, late): %v", got, slices.Collect(maps.Keys(keysOf(resp))))
	}
}

func keysOf(resp *clientv3.GetResponse) map[string]bool {
	m := map[string]bool{}
	for _, e := range resp.Kvs {
		m[string(e.Key)] = true
	}
	return m
}

// keyFailKV is the real etcd client whose transactions on one key fail
// while broken is set.
type keyFailKV struct {
	*clientv3.Client
	key      string
	broken   atomic.Bool
	failures atomic.Int64
}

func (k *keyFailKV) Txn(ctx context.Context) clientv3.Txn {
	return &keyTxn{Txn: k.Client.Txn(ctx), kv: k}
}

type keyTxn struct {
	clientv3.Txn
	kv  *keyFailKV
	hit bool
}

func (x *keyTxn) If(cs ...clientv3.Cmp) clientv3.Txn {
	for _, c := range cs {
		if string(c.KeyBytes()) == x.kv.key {
			x.hit = true
		}
	}
	x.Txn = x.Txn.If(cs...)
	return x
}

func (x *keyTxn) Then(ops ...clientv3.Op) clientv3.Txn { x.Txn = x.Txn.Then(ops...); return x }
func (x *keyTxn) Else(ops ...clientv3.Op) clientv3.Txn { x.Txn = x.Txn.Else(ops...); return x }

func (x *keyTxn) Commit() (*clientv3.TxnResponse, error) {
	if x.hit && x.kv.broken.Load() {
		x.kv.failures.Add(1)
		return nil, errInjected
	}
	return x.Txn.Commit()
}
