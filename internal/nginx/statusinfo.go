package nginx

import (
	"os"
	"slices"
	"time"
)

// listenAddrs are the stage's listen addresses as configured (":80" when no
// HTTP address was given) and, when a config is already in place (kept from
// an earlier run), the time its file was written.
func (s *Stage) listenAddrs() (httpAddrs, httpsAddrs []string, appliedAt time.Time) {
	httpAddrs = slices.Clone(s.cfg.HTTPAddrs)
	if len(httpAddrs) == 0 {
		httpAddrs = []string{":80"}
	}
	if s.applier.Current() != "" {
		if fi, err := os.Stat(s.applier.ConfPath); err == nil {
			appliedAt = fi.ModTime().UTC()
		}
	}
	return httpAddrs, slices.Clone(s.cfg.HTTPSAddrs), appliedAt
}
