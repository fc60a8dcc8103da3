package reporter

import (
	"fmt"
	"slices"
	"strings"

	"github.com/portico/portico/internal/store"
)

// MaxRecordBytes caps the encoded size of one container record. etcd refuses
// requests over 1.5 MiB (and a stage refuses values over
// store.MaxValueBytes); the labels and environment Portico reads fit in a
// few KiB, so 64 KiB leaves room for any honest container while keeping a
// resync of thousands of records cheap. A container over the cap is
// published as rejected (see Record).
const MaxRecordBytes = 64 << 10

// maxRejectedName bounds the name kept in a rejected record.
const maxRejectedName = 255

// Record encodes the record the reporter publishes for c. When c's record
// would exceed maxBytes it publishes instead the small record rejecting it:
// id, name, host, state and the reason, which routing.Build turns into an
// error and never into a route. It returns the published record and its bytes.
func Record(c store.Container, maxBytes int) (store.Container, []byte, error) {
	b, err := store.Encode(c)
	if err != nil {
		return store.Container{}, nil, fmt.Errorf("container %s (%s): %w", c.Name, c.ID, err)
	}
	if len(b) <= maxBytes {
		return c, b, nil
	}
	r := Rejected(c, fmt.Sprintf("record of %d bytes exceeds the reporter's cap of %d bytes (labels portico.*, com.chameth.* and the allow-listed env count)", len(b), maxBytes))
	b, err = store.Encode(r)
	if err != nil {
		return store.Container{}, nil, fmt.Errorf("container %s (%s): %w", c.Name, c.ID, err)
	}
	return r, b, nil
}

// Rejected is the record that stands for a container the reporter cannot
// publish, with the reason: only id, name, host and state.
func Rejected(c store.Container, reason string) store.Container {
	name := c.Name
	if len(name) > maxRejectedName {
		name = strings.ToValidUTF8(name[:maxRejectedName], "")
	}
	return store.Container{ID: c.ID, Name: name, Host: c.Host, State: c.State, Rejected: reason}
}

// Stale returns, sorted, the keys of host's records in stored whose
// containers are not listed (listed holds container ids). Keys outside
// keys.HostContainers(host) are never returned, whatever stored holds: other
// hosts' records belong to their own reporters.
func Stale[V any](keys store.Keys, host string, listed map[string]bool, stored map[string]V) []string {
	prefix := keys.HostContainers(host)
	var out []string
	for key := range stored {
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		if id := key[len(prefix):]; id != "" && listed[id] && keys.Container(host, id) == key {
			continue
		}
		out = append(out, key)
	}
	slices.Sort(out)
	return out
}
