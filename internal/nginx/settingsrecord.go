package nginx

import (
	"context"
	"time"

	"github.com/portico/portico/internal/store"
)

// SettingsRecord is what the stage publishes under Keys.NginxSettings:
// the settings `portico status` and `explain` need to route and render as
// it does.
func (s *Stage) SettingsRecord() store.NginxSettings {
	rec := store.NginxSettings{
		Instance:             s.cfg.Instance,
		Network:              s.cfg.Routing.Network,
		AllowedDomains:       s.cfg.AllowedDomains,
		HTTPAddrs:            s.cfg.HTTPAddrs,
		HTTPSAddrs:           s.cfg.HTTPSAddrs,
		IncludeDir:           s.cfg.IncludeDir,
		MaxRequestsPerClient: s.cfg.MaxRequestsPerClient,
		NginxVersion:         s.settings.NginxVersion,
		HTTP3:                s.settings.HTTP3,
		CustomTemplate:       s.settings.Template != "",
	}
	for _, p := range s.cfg.TrustedProxies {
		rec.TrustedProxies = append(rec.TrustedProxies, p.String())
	}
	return rec
}

// publishSettings writes SettingsRecord once per run; false when the write
// failed (the next sync tries again).
func (s *Stage) publishSettings(ctx context.Context) bool {
	if s.published {
		return true
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := store.PutJSON(wctx, s.cli, s.cfg.Keys.NginxSettings(s.cfg.Instance), s.SettingsRecord()); err != nil {
		s.log.Warn("write nginx settings", "err", err)
		return false
	}
	s.published = true
	return true
}
