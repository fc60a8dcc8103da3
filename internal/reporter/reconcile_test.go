package reporter

import (
	"slices"
	"testing"

	"github.com/portico/portico/internal/store"
)

func TestStale(t *testing.T) {
	keys := store.NewKeys("/portico")
	key := func(host, id string) string { return keys.Container(host, id) }
	stored := map[string]store.Version{
		key("h1", "a"):             {ModRevision: 1},
		key("h1", "gone"):          {ModRevision: 2},
		key("h1", "junk"):          {ModRevision: 3},
		key("h1", "x") + "/nested": {ModRevision: 4},
		key("h2", "gone"):          {ModRevision: 5},
		key("h10", "gone"):         {ModRevision: 6},
		"/portico/status/nginx/n1": {ModRevision: 7},
		"/other/containers/h1/z":   {ModRevision: 8},
	}
	listed := map[string]bool{"a": true, "x": true, "not-stored": true}
	got := Stale(keys, "h1", listed, stored)
	want := []string{key("h1", "gone"), key("h1", "junk"), key("h1", "x") + "/nested"}
	if !slices.Equal(got, want) {
		t.Errorf("Stale = %q, want %q", got, want)
	}
	if got := Stale(keys, "h1", listed, map[string]store.Version{}); len(got) != 0 {
		t.Errorf("nothing stored: %q", got)
	}
}
