package nginx

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// hostileVhost is a vhost list of n bytes of short invalid names.
func hostileVhost(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "h%d_x,", i)
	}
	return b.String()[:n]
}

// TestHostileProblemLogBounded: one container with a 30 KB hostile vhost
// label, rendered 20 times the way sync does, logs a bounded amount, once.
func TestHostileProblemLogBounded(t *testing.T) {
	var buf bytes.Buffer
	s := &Stage{log: slog.New(slog.NewTextHandler(&buf, nil)), logged: map[string]bool{}}
	cs := []store.Container{{
		ID: "id-victim", Name: "victim", Host: "node1", State: "running",
		Labels:   map[string]string{routing.LabelVhost: hostileVhost(30 << 10)},
		Networks: map[string]store.Network{"proxy": {IPv4: "172.18.0.2"}},
	}}
	const renders = 20
	for range renders {
		res := routing.Build(cs, routing.Options{Network: "proxy"})
		errs := make([]error, 0, len(res.Problems))
		for _, p := range res.Problems {
			errs = append(errs, p)
		}
		s.logErrors(errs)
	}
	t.Logf("30 KB hostile vhost label, %d renders: %d bytes logged, %d lines", renders, buf.Len(), strings.Count(buf.String(), "\n"))
	if buf.Len() > 16<<10 {
		t.Errorf("logged %d bytes for one hostile container, want at most 16 KiB", buf.Len())
	}
}
