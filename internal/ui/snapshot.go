package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/portico/portico/internal/status"
	"github.com/portico/portico/internal/store"
)

// Snapshot is what the page receives: the status report and when and from
// which store revision it was made.
type Snapshot struct {
	GeneratedAt time.Time `json:"generated_at"`
	Revision    int64     `json:"revision"`
	// Synced is false until the mirror has listed the store once.
	Synced bool `json:"synced"`
	// Truncated says lists were cut to keep the snapshot under its bound;
	// Counts still has the full numbers.
	Truncated bool            `json:"truncated,omitempty"`
	Report    json.RawMessage `json:"report"`
	// EmbeddedEtcd is the supervisor's report on the embedded etcd of
	// `portico run` (nil elsewhere): why the store does not answer.
	EmbeddedEtcd *store.EmbeddedHealth `json:"embedded_etcd,omitempty"`
}

// Encode renders the snapshot of rep as JSON of at most max bytes. Errors
// are redacted and terminal controls escaped (status.Report.WriteJSON);
// per-route digests the page does not show are dropped. When the JSON is
// too big, the longest lists are halved until it fits; the page says so.
func Encode(rep status.Report, rev int64, synced bool, health *store.EmbeddedHealth, now time.Time, max int) ([]byte, error) {
	rep.Nginx = slices.Clone(rep.Nginx)
	for i := range rep.Nginx {
		rep.Nginx[i].AppliedRoutes = nil
	}
	s := Snapshot{GeneratedAt: now.UTC(), Revision: rev, Synced: synced, EmbeddedEtcd: health}
	for range 64 {
		var buf bytes.Buffer
		if err := rep.WriteJSON(&buf); err != nil {
			return nil, err
		}
		s.Report = bytes.TrimSpace(buf.Bytes())
		b, err := json.Marshal(s)
		if err != nil {
			return nil, fmt.Errorf("ui snapshot: %w", err)
		}
		if len(b) <= max {
			return b, nil
		}
		if !halveLongest(&rep) {
			break
		}
		s.Truncated = true
	}
	return nil, fmt.Errorf("ui snapshot: over %d bytes even with every list emptied", max)
}

// halveLongest cuts the longest list of rep to half; false when all are
// empty.
func halveLongest(r *status.Report) bool {
	lens := []int{len(r.Containers), len(r.Routes), len(r.Problems), len(r.Certs), len(r.Store), len(r.Nginx)}
	best, n := -1, 0
	for i, l := range lens {
		if l > n {
			best, n = i, l
		}
	}
	switch best {
	case 0:
		r.Containers = r.Containers[:n/2]
	case 1:
		r.Routes = r.Routes[:n/2]
	case 2:
		r.Problems = r.Problems[:n/2]
	case 3:
		r.Certs = r.Certs[:n/2]
	case 4:
		r.Store = r.Store[:n/2]
	case 5:
		r.Nginx = r.Nginx[:n/2]
	default:
		return false
	}
	return true
}
