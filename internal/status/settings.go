package status

import (
	"slices"
	"strconv"
	"strings"

	"github.com/portico/portico/internal/store"
)

// StageSettings finds the settings the nginx stages published
// (store.NginxSettings) in a snapshot: the first instance's by name; notes
// say when other instances run with other routing settings, or when a
// record does not decode. ok is false when no stage published any.
func StageSettings(entries map[string]store.Entry, keys store.Keys) (s store.NginxSettings, ok bool, notes []string) {
	var all []store.NginxSettings
	for k, e := range entries {
		if !strings.HasPrefix(k, keys.NginxSettingsAll()) {
			continue
		}
		var rec store.NginxSettings
		if err := store.Decode(k, e.Value, &rec); err != nil {
			notes = append(notes, "ignored: "+err.Error())
			continue
		}
		all = append(all, rec)
	}
	if len(all) == 0 {
		return store.NginxSettings{}, false, notes
	}
	slices.SortFunc(all, func(a, b store.NginxSettings) int { return strings.Compare(a.Instance, b.Instance) })
	for _, o := range all[1:] {
		if o.Network != all[0].Network || !slices.Equal(o.AllowedDomains, all[0].AllowedDomains) {
			notes = append(notes, "nginx stages "+Escape(all[0].Instance)+" and "+Escape(o.Instance)+" route with different --network or --allowed-domains; using "+Escape(all[0].Instance)+"'s")
		}
	}
	return all[0], true, notes
}

// SettingsFlags are a stage's settings as the flag values of `status` and
// `explain` that stand for them.
func SettingsFlags(s store.NginxSettings) map[string]string {
	return map[string]string{
		"network":                 s.Network,
		"allowed-domains":         strings.Join(s.AllowedDomains, ","),
		"http-addr":               strings.Join(s.HTTPAddrs, ","),
		"https-addr":              strings.Join(s.HTTPSAddrs, ","),
		"include-dir":             s.IncludeDir,
		"trusted-proxies":         strings.Join(s.TrustedProxies, ","),
		"max-requests-per-client": strconv.Itoa(s.MaxRequestsPerClient),
	}
}
