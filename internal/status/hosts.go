package status

import (
	"fmt"
	"io"
	"time"

	"github.com/portico/portico/internal/hosts"
)

// writeHosts prints the Docker hosts that have liveness keys, when one of
// them is not live: live hosts alone are not worth a section.
func (r Report) writeHosts(w io.Writer, now time.Time) {
	down := 0
	for _, h := range r.Hosts {
		if h.State != hosts.Live {
			down++
		}
	}
	if down == 0 {
		return
	}
	fmt.Fprintf(w, "\nDOCKER HOSTS (%d, %d not live)\n", len(r.Hosts), down)
	fmt.Fprintln(w, "  HOST\tSTATE\tLAST SEEN\tROUTES UNTIL")
	for _, h := range r.Hosts {
		until := "-"
		switch h.State {
		case hosts.Stale:
			until = when(h.ExpiresAt, now)
			if h.ExpiresAt.IsZero() {
				until = "kept (no expiry)"
			}
		case hosts.Expired:
			until = "expired: records no longer routed"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", Escape(h.Host), h.State, when(h.LastSeen, now), until)
	}
}
