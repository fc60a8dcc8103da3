package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/portico/portico/internal/status"
	"github.com/portico/portico/internal/store"
)

// writeEtcdDown prints why the embedded etcd of dataDir does not answer,
// from the health file its supervisor keeps (the store cannot say it
// itself), and reports whether it had anything to say: nothing when the
// file is missing or says etcd is up.
func writeEtcdDown(w io.Writer, dataDir string, asJSON bool, now time.Time) bool {
	h, err := store.ReadHealth(dataDir)
	if err != nil || h.Up {
		return false
	}
	if asJSON {
		b, err := json.MarshalIndent(map[string]any{"embedded_etcd": h}, "", "  ")
		if err != nil {
			return false
		}
		fmt.Fprintf(w, "%s\n", b)
		return true
	}
	fmt.Fprintf(w, "STORE DOWN: the embedded etcd of %s is %s since %s (%s ago, %d failures)\n",
		status.Escape(absPath(dataDir)), status.Escape(h.Reason), h.Since.Format(time.RFC3339),
		now.Sub(h.Since).Round(time.Second), h.Failures)
	if h.Problem != "" {
		fmt.Fprintf(w, "  problem: %s\n", status.Escape(h.Problem))
	}
	if h.File != "" {
		fmt.Fprintf(w, "  file:    %s\n", status.Escape(h.File))
	}
	if h.Advice != "" {
		fmt.Fprintf(w, "  do:      %s\n", status.Escape(h.Advice))
	}
	fmt.Fprintln(w, "  nginx keeps serving its last good config; changes wait for the store.")
	return true
}
