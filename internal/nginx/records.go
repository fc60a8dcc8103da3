package nginx

import (
	"github.com/portico/portico/internal/store"
)

// decoded caches one key's decoded value at the ModRevision it was read.
type decoded[T any] struct {
	rev int64
	v   T
	err error
}

// containers decodes the mirrored records, reusing what was decoded at the
// same ModRevision; a bad record is logged once per revision and skipped.
// The records come in no order (routing sorts what it needs). It reads
// the mirror in place: a change copies no map of the whole table.
func (s *Stage) containers(m *store.Mirror) []store.Container {
	out := make([]store.Container, 0, len(s.decodedC))
	var bad []string
	n := m.Range(func(k string, e store.Entry) bool {
		d, ok := s.decodedC[k]
		if !ok || d.rev != e.ModRevision {
			c, err := store.DecodeContainerEntry(k, e)
			d = decoded[store.Container]{rev: e.ModRevision, v: c, err: err}
			s.decodedC[k] = d
			if err != nil {
				bad = append(bad, k)
			}
		}
		if d.err == nil {
			out = append(out, d.v)
		}
		return true
	})
	for _, k := range bad {
		s.log.Warn("skipping container record", "key", k, "err", s.decodedC[k].err)
	}
	if len(s.decodedC) != n {
		// Some record was deleted: forget its decoded value. (Every key
		// the mirror holds is in decodedC now, so equal sizes mean the
		// same keys.)
		keep := make(map[string]bool, n)
		m.Range(func(k string, _ store.Entry) bool { keep[k] = true; return true })
		for k := range s.decodedC {
			if !keep[k] {
				delete(s.decodedC, k)
			}
		}
	}
	return out
}

// bundles decodes the mirrored certificate bundles like containers.
func (s *Stage) bundles(m *store.Mirror) map[string]store.CertBundle {
	snap, _, _ := m.Snapshot()
	out := make(map[string]store.CertBundle, len(snap))
	for k, e := range snap {
		d, ok := s.decodedB[k]
		if !ok || d.rev != e.ModRevision {
			var b store.CertBundle
			err := store.Decode(k, e.Value, &b)
			d = decoded[store.CertBundle]{rev: e.ModRevision, v: b, err: err}
			s.decodedB[k] = d
			if err != nil {
				s.log.Warn("skipping certificate record", "key", k, "err", err)
			}
		}
		if d.err == nil {
			out[k] = d.v
		}
	}
	for k := range s.decodedB {
		if _, ok := snap[k]; !ok {
			delete(s.decodedB, k)
		}
	}
	return out
}
