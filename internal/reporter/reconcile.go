package reporter

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/portico/portico/internal/store"
)

// Plan is what one reconciliation writes to etcd.
type Plan struct {
	// Puts are the records to write, sorted by key.
	Puts []Put
	// Deletes are the keys of this host's records to remove, sorted.
	Deletes []string
}

// Put is one record to write.
type Put struct {
	Key   string
	Value []byte
}

// Empty reports whether the plan writes nothing.
func (p Plan) Empty() bool { return len(p.Puts) == 0 && len(p.Deletes) == 0 }

// Reconcile compares the records host's containers should have (desired)
// with what etcd holds (stored: key -> value). It puts every record whose
// stored bytes differ and deletes this host's keys that no container has.
// Keys outside keys.HostContainers(host) are never planned, whatever stored
// holds: other hosts' records belong to their own reporters.
func Reconcile(keys store.Keys, host string, desired []store.Container, stored map[string][]byte) (Plan, error) {
	prefix := keys.HostContainers(host)
	want := make(map[string]bool, len(desired))
	var plan Plan
	for _, c := range desired {
		if c.Host != host {
			return Plan{}, fmt.Errorf("container %s (%s): record names host %q, not %q", c.Name, c.ID, c.Host, host)
		}
		key := keys.Container(host, c.ID)
		if want[key] {
			return Plan{}, fmt.Errorf("container %s (%s): listed twice", c.Name, c.ID)
		}
		want[key] = true
		b, err := store.Encode(c)
		if err != nil {
			return Plan{}, fmt.Errorf("container %s (%s): %w", c.Name, c.ID, err)
		}
		if old, ok := stored[key]; !ok || !bytes.Equal(old, b) {
			plan.Puts = append(plan.Puts, Put{Key: key, Value: b})
		}
	}
	for key := range stored {
		if strings.HasPrefix(key, prefix) && !want[key] {
			plan.Deletes = append(plan.Deletes, key)
		}
	}
	slices.SortFunc(plan.Puts, func(a, b Put) int { return strings.Compare(a.Key, b.Key) })
	slices.Sort(plan.Deletes)
	return plan, nil
}
