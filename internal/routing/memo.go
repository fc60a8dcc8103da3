package routing

import (
	"net/netip"

	"github.com/portico/portico/internal/store"
)

// Memo is Build for a stage that builds again after every change: it
// remembers ParseService's result per record, keyed by (Host, ID) and the
// record's ModRevision, so that a build after one record changed parses
// that record alone. Parsing is most of Build's cost (docs/scale.md).
//
// What it reuses is what ParseService, which is pure, would return for the
// same record and options, with two cases it always parses again: a record
// of unknown revision (ModRevision 0), and a record whose parse had an
// error (few; an address refused as the host's own may be fine later;
// warnings are kept). The one input that
// changes under the same options is LocalAddr (the host's interfaces): a
// remembered service whose address it now names is parsed again, so the
// address is refused as Build would.
//
// A Memo is for one Options and is not safe for concurrent use.
type Memo struct {
	opts Options
	m    map[memoKey]memoEntry
}

type memoKey struct{ node, id string }

type memoEntry struct {
	rev   int64
	svc   Service
	probs []Problem // warnings only
}

// NewMemo returns an empty Memo for opts.
func NewMemo(opts Options) *Memo { return &Memo{opts: opts, m: map[memoKey]memoEntry{}} }

// Build is Build(cs, opts) with the remembered parses. Records not in cs
// are forgotten.
func (m *Memo) Build(cs []store.Container) Result {
	seen := make(map[memoKey]bool, len(cs))
	res := build(cs, m.opts, func(c store.Container) (Service, []Problem) {
		k := memoKey{c.Host, c.ID}
		seen[k] = true
		if e, ok := m.m[k]; ok && c.ModRevision != 0 && e.rev == c.ModRevision && !m.nowLocal(e.svc) {
			return e.svc, e.probs
		}
		svc, probs := ParseService(c, m.opts)
		if c.ModRevision != 0 && !hasError(probs) {
			m.m[k] = memoEntry{rev: c.ModRevision, svc: svc, probs: probs}
		} else {
			delete(m.m, k)
		}
		return svc, probs
	})
	for k := range m.m {
		if !seen[k] {
			delete(m.m, k)
		}
	}
	return res
}

// Len is the number of remembered parses.
func (m *Memo) Len() int { return len(m.m) }

// nowLocal: LocalAddr names the remembered service's upstream address (a
// service reached at its own node's published port is then parsed every
// time: ParseService allows that address by design).
func (m *Memo) nowLocal(svc Service) bool {
	if m.opts.LocalAddr == nil || svc.Addr == "" {
		return false
	}
	a, err := netip.ParseAddrPort(svc.Addr)
	return err == nil && m.opts.LocalAddr(a.Addr().Unmap())
}
