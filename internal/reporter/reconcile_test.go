package reporter

import (
	"reflect"
	"testing"

	"github.com/portico/portico/internal/store"
)

func TestReconcile(t *testing.T) {
	keys := store.NewKeys("/portico")
	rec := func(host, id, state string) store.Container {
		return store.Container{ID: id, Name: "n-" + id, Host: host, State: state}
	}
	enc := func(c store.Container) []byte {
		b, err := store.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	key := func(host, id string) string { return keys.Container(host, id) }

	tests := []struct {
		name    string
		desired []store.Container
		stored  map[string][]byte
		puts    []string
		deletes []string
		err     string
	}{
		{name: "nothing anywhere"},
		{
			name:    "new containers are put, in key order",
			desired: []store.Container{rec("h1", "b", "running"), rec("h1", "a", "running")},
			puts:    []string{key("h1", "a"), key("h1", "b")},
		},
		{
			name:    "unchanged records are not written",
			desired: []store.Container{rec("h1", "a", "running")},
			stored:  map[string][]byte{key("h1", "a"): enc(rec("h1", "a", "running"))},
		},
		{
			name:    "changed record is put",
			desired: []store.Container{rec("h1", "a", "exited")},
			stored:  map[string][]byte{key("h1", "a"): enc(rec("h1", "a", "running"))},
			puts:    []string{key("h1", "a")},
		},
		{
			name: "stale and undecodable records of this host are deleted",
			stored: map[string][]byte{
				key("h1", "gone"):  enc(rec("h1", "gone", "running")),
				key("h1", "junk"):  []byte("{not json"),
				key("h1", "other"): enc(rec("h2", "other", "running")),
			},
			deletes: []string{key("h1", "gone"), key("h1", "junk"), key("h1", "other")},
		},
		{
			name:    "other hosts' keys are never touched",
			desired: []store.Container{rec("h1", "a", "running")},
			stored: map[string][]byte{
				key("h2", "a"):             enc(rec("h2", "a", "running")),
				key("h10", "x"):            enc(rec("h10", "x", "running")),
				"/portico/status/nginx/n1": []byte("{}"),
				"/other/containers/h1/z":   []byte("{}"),
			},
			puts: []string{key("h1", "a")},
		},
		{
			name:    "record for another host is refused",
			desired: []store.Container{rec("h2", "a", "running")},
			err:     `container n-a (a): record names host "h2", not "h1"`,
		},
		{
			name:    "duplicate container is refused",
			desired: []store.Container{rec("h1", "a", "running"), rec("h1", "a", "exited")},
			err:     "container n-a (a): listed twice",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := Reconcile(keys, "h1", tt.desired, tt.stored)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var puts []string
			for _, p := range plan.Puts {
				puts = append(puts, p.Key)
				c, err := store.DecodeContainer(p.Key, p.Value)
				if err != nil {
					t.Errorf("planned value does not decode: %v", err)
				}
				if c.Host != "h1" {
					t.Errorf("planned record for host %q", c.Host)
				}
			}
			if !reflect.DeepEqual(puts, tt.puts) || !reflect.DeepEqual(plan.Deletes, tt.deletes) {
				t.Errorf("puts %q deletes %q; want puts %q deletes %q", puts, plan.Deletes, tt.puts, tt.deletes)
			}
			if plan.Empty() != (len(tt.puts)+len(tt.deletes) == 0) {
				t.Errorf("Empty() = %v", plan.Empty())
			}
		})
	}
}
