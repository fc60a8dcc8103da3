package render

import "fmt"

// TrafficPaths place what nginx needs to count each site's requests
// (package traffic): the Lua module's directory and the control socket
// Portico reads the counters from. On the dynamic path they are the
// dynamic path's own.
type TrafficPaths struct {
	LuaDir        string
	ControlSocket string
}

// AccessLog is nginx's access log in Portico's JSON format
// (docs/access-log.md).
type AccessLog struct {
	// Path is an absolute file; /dev/stdout writes to nginx's standard
	// output.
	Path string
	// Query keeps the query string in "path"; without it the path ends
	// before the first "?".
	Query bool
}

// trafficZone sizes the counters' shared dictionary: a site with traffic
// holds up to 34 keys of about 100 bytes, so 32 MB count about 9,000
// busy sites; past that nginx evicts the least recently used counters.
const trafficZone = "32m"

// trafficView is what the template's traffic blocks see.
type trafficView struct {
	TrafficPaths
	Zone    string
	MaxPush string
}

// accessLogView is what the template's access log blocks see.
type accessLogView struct {
	AccessLog
}

// trafficSettings checks the settings' traffic and access log parts and
// puts them in v.
func (v *shared) trafficSettings(s Settings) error {
	if s.Traffic != nil {
		t := *s.Traffic
		if s.Dynamic != nil {
			t = TrafficPaths{LuaDir: s.Dynamic.LuaDir, ControlSocket: s.Dynamic.ControlSocket}
		}
		for what, p := range map[string]string{"lua dir": t.LuaDir, "control socket": t.ControlSocket} {
			if err := checkPath(what, p); err != nil {
				return fmt.Errorf("traffic counters: %w", err)
			}
		}
		v.Traffic = &trafficView{TrafficPaths: t, Zone: trafficZone, MaxPush: maxPush}
	}
	if s.AccessLog != nil {
		if err := checkPath("access log", s.AccessLog.Path); err != nil {
			return err
		}
		v.AccessLog = &accessLogView{AccessLog: *s.AccessLog}
	}
	return nil
}

// Traffic and AccessLog give the "vhost" template the shared settings.
func (h vhost) Traffic() *trafficView     { return h.sh.Traffic }
func (h vhost) AccessLog() *accessLogView { return h.sh.AccessLog }
func (h vhost) DynamicPath() bool         { return h.sh.DynamicPath }
