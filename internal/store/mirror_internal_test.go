package store

import (
	"fmt"
	"maps"
	"testing"
)

// A mirror that held many keys and lost most of them copies its map into
// one of its size: a Go map never gives back the room of deleted keys.
func TestMirrorShrinksAfterDeletes(t *testing.T) {
	m := &Mirror{kv: map[string]Entry{}}
	for i := range 4000 {
		m.kv[fmt.Sprintf("/k/%d", i)] = Entry{Value: []byte("v"), ModRevision: int64(i + 1)}
	}
	m.shrink()
	if m.peak != 4000 {
		t.Fatalf("peak %d, want 4000", m.peak)
	}
	before := m.kv
	for i := 10; i < 3000; i++ {
		delete(m.kv, fmt.Sprintf("/k/%d", i))
	}
	m.shrink() // 1,010 left: more than a quarter, kept
	if m.peak != 4000 {
		t.Fatalf("copied at %d of 4000 keys", len(m.kv))
	}
	for i := 3000; i < 4000; i++ {
		delete(m.kv, fmt.Sprintf("/k/%d", i))
	}
	want := maps.Clone(m.kv)
	m.shrink()
	if m.peak != 10 || len(m.kv) != 10 || !maps.EqualFunc(m.kv, want, func(a, b Entry) bool { return a.ModRevision == b.ModRevision }) {
		t.Fatalf("after shrink: peak %d, %d keys, want the same 10", m.peak, len(m.kv))
	}
	m.kv["/k/new"] = Entry{}
	if _, ok := before["/k/new"]; ok {
		t.Fatal("shrink kept the old map")
	}
}
