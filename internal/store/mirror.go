package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Entry is one key's value, the revision that last changed it and the one
// that created it. Consumers can cache what they decode by ModRevision.
type Entry struct {
	Value          []byte
	ModRevision    int64
	CreateRevision int64
}

// Watcher is the part of the etcd client a Mirror uses.
type Watcher interface {
	Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error)
	Watch(ctx context.Context, key string, opts ...clientv3.OpOption) clientv3.WatchChan
}

// Mirror keeps a local copy of every key under a prefix, level-triggered:
// it lists, watches from the next revision, and lists again on any watch
// error (compaction, lost leader, a dead server). After each change it sends
// on its notify channel without blocking, so bursts coalesce.
type Mirror struct {
	cli    Watcher
	prefix string
	notify chan<- struct{}
	log    *slog.Logger

	mu     sync.Mutex
	kv     map[string]Entry
	rev    int64
	synced bool
	// peak is the most keys kv held since it was made: a Go map never
	// gives back the room of deleted keys, so once it holds a quarter of
	// that it is copied into one of its size (shrink).
	peak int
}

// shrinkFrom is the smallest peak worth a copy.
const shrinkFrom = 1024

// NewMirror mirrors prefix. notify should have capacity 1; several mirrors
// may share it.
func NewMirror(cli Watcher, prefix string, notify chan<- struct{}, log *slog.Logger) *Mirror {
	return &Mirror{cli: cli, prefix: prefix, notify: notify, log: log, kv: map[string]Entry{}}
}

// Snapshot returns a copy of the mirrored keys, the revision they are current
// to, and whether a first list has completed.
func (m *Mirror) Snapshot() (map[string]Entry, int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.kv), m.rev, m.synced
}

// Range calls f with each mirrored key and entry, in no order, until f
// returns false, without copying the map as Snapshot does; it returns how
// many keys the mirror holds. The mirror waits while f runs: f must be
// quick and must not call the Mirror.
func (m *Mirror) Range(f func(key string, e Entry) bool) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, e := range m.kv {
		if !f(k, e) {
			break
		}
	}
	return len(m.kv)
}

// Run mirrors until ctx ends. Errors are logged and retried with backoff;
// Run returns only ctx's error.
func (m *Mirror) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		err := m.once(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m.log.Warn("store watch interrupted; listing again", "prefix", m.prefix, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
		if errors.Is(err, errWatchRan) {
			backoff = 100 * time.Millisecond
		}
	}
}

// errWatchRan marks a watch that delivered events before it failed, so the
// retry starts fast again.
var errWatchRan = errors.New("watch ended")

func (m *Mirror) once(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	resp, err := m.cli.Get(lctx, m.prefix, clientv3.WithPrefix())
	cancel()
	if err != nil {
		return fmt.Errorf("list %s: %w", m.prefix, err)
	}
	kv := make(map[string]Entry, len(resp.Kvs))
	for _, e := range resp.Kvs {
		kv[string(e.Key)] = Entry{Value: e.Value, ModRevision: e.ModRevision, CreateRevision: e.CreateRevision}
	}
	m.mu.Lock()
	changed := !m.synced || !sameEntries(m.kv, kv)
	m.kv, m.rev, m.synced, m.peak = kv, resp.Header.Revision, true, len(kv)
	m.mu.Unlock()
	if changed {
		m.poke()
	}

	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer wcancel()
	// No WithPrevKV: the mirror needs only the new value, and the previous
	// one would double what etcd reads and sends, and what is decoded
	// here, for every change.
	wch := m.cli.Watch(wctx, m.prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("watch %s: %w: %w", m.prefix, errWatchRan, err)
		}
		if len(wr.Events) == 0 {
			continue
		}
		m.mu.Lock()
		for _, ev := range wr.Events {
			k := string(ev.Kv.Key)
			if ev.Type == clientv3.EventTypeDelete {
				delete(m.kv, k)
			} else {
				m.kv[k] = Entry{Value: ev.Kv.Value, ModRevision: ev.Kv.ModRevision, CreateRevision: ev.Kv.CreateRevision}
			}
		}
		m.rev = wr.Header.Revision
		m.shrink()
		m.mu.Unlock()
		m.poke()
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("watch %s: %w: channel closed", m.prefix, errWatchRan)
}

// shrink copies kv into a map of its size once it holds less than a
// quarter of its peak; m.mu must be held.
func (m *Mirror) shrink() {
	m.peak = max(m.peak, len(m.kv))
	if m.peak < shrinkFrom || len(m.kv) >= m.peak/4 {
		return
	}
	kv := make(map[string]Entry, len(m.kv))
	maps.Copy(kv, m.kv)
	m.kv, m.peak = kv, len(kv)
}

func (m *Mirror) poke() {
	select {
	case m.notify <- struct{}{}:
	default:
	}
}

func sameEntries(a, b map[string]Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w.ModRevision != v.ModRevision {
			return false
		}
	}
	return true
}
