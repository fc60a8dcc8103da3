package nginx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/portico/portico/internal/nginx/dynamic"
	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/routing"
)

// apply puts routes and certificates in place: pushed to the dynamic path
// when the stage runs it, else rendered into the config (applyRoutes).
func (s *Stage) apply(ctx context.Context, routes []routing.Route, refs []render.CertRef) outcome {
	if s.pusher == nil {
		return s.applyRoutes(ctx, routes, refs)
	}
	return s.applyDynamic(ctx, routes, refs)
}

// applyDynamic keeps the static config (settingsConf, rendered once: a
// no-op after the first time) and pushes the route
// table and certificates: no nginx -t, no reload.
func (s *Stage) applyDynamic(ctx context.Context, routes []routing.Route, refs []render.CertRef) outcome {
	all := hostsOf(routes)
	conf := s.settingsConf
	if conf == nil { // the settings did not render at New
		_, err := render.Render(render.Input{Settings: s.settings})
		return outcome{errRoutes: all, err: &RenderError{Err: errors.Join(err, errors.New("no config for these settings"))}}
	}
	res, err := s.applier.Apply(ctx, conf)
	if err != nil {
		return outcome{res: res, errRoutes: all, err: err}
	}
	t0 := time.Now()
	table, certs, err := render.DynamicTable(routes, refs, s.settings, s.certs.Dir)
	if err != nil {
		return outcome{res: res, errRoutes: all, err: &RenderError{Err: err}}
	}
	enc, err := table.EncodeTable()
	if err != nil {
		return outcome{res: res, errRoutes: all, err: &RenderError{Err: err}}
	}
	t1 := time.Now()
	changed, err, serr := s.pusher.Push(ctx, enc, certs)
	if s.log.Enabled(ctx, slog.LevelDebug) {
		deltas, fulls, size := s.pusher.Counts()
		s.log.Debug("nginx push", "table", t1.Sub(t0), "push", time.Since(t1), "bytes", size, "deltas", deltas, "fulls", fulls)
	}
	if serr != nil {
		serr = &WriteError{What: "dynamic path state file", Path: s.pusher.StateFile, Err: serr,
			Serving: "nginx serves the pushed routes; a restarted nginx would load the previous state"}
	}
	if err != nil && s.sup.Pid() != 0 {
		if !s.nginxUp() {
			// nginx is starting: its control socket may not be there
			// yet, and it may have read the state file before this
			// write. Not a failure: Run pushes again once it is up.
			return outcome{res: res, errRoutes: all, err: &startingError{Err: err}}
		}
		return outcome{res: res, errRoutes: all, err: errors.Join(fmt.Errorf("push to nginx: %w", err), serr)}
	}
	if err != nil || s.sup.Pid() == 0 {
		// With no nginx running, the state file is what the next start
		// loads: not written, nothing is applied.
		if serr != nil {
			return outcome{res: res, errRoutes: all, err: serr}
		}
	}
	h := sha256.Sum256([]byte(res.Hash + enc.Version))
	res.Hash = hex.EncodeToString(h[:])
	res.Changed = res.Changed || changed
	// Pushed: live, whether or not the state file was written.
	return outcome{res: res, applied: routes, err: serr}
}

// startingError is a push that failed while the supervised nginx had not
// yet come up for the first time: Run pushes again when it has.
type startingError struct{ Err error }

func (e *startingError) Error() string { return "nginx is starting: " + e.Err.Error() }
func (e *startingError) Unwrap() error { return e.Err }

// nginxUp reports whether the supervised nginx has come up once.
func (s *Stage) nginxUp() bool {
	select {
	case <-s.sup.Up():
		return true
	default:
		return false
	}
}

// pushMaxGap caps the pacer's gap between two pushes during a burst of
// changes: a push costs a table encode and a local request, and the gap is
// added to a change's time to go live (a stopping replica's exit among
// them), so it stays short.
const pushMaxGap = 50 * time.Millisecond

// DefaultModulesDir is where Debian's nginx packages put dynamic modules.
const DefaultModulesDir = "/usr/lib/nginx/modules"

// luaModules are the modules the dynamic path loads, in load order.
var luaModules = [...]string{"ndk_http_module.so", "ngx_http_lua_module.so"}

// LuaAvailable reports whether modulesDir ("" for the default) holds the
// modules the dynamic path needs (Debian: libnginx-mod-http-lua).
func LuaAvailable(modulesDir string) bool {
	if modulesDir == "" {
		modulesDir = DefaultModulesDir
	}
	for _, m := range luaModules {
		if _, err := os.Stat(filepath.Join(modulesDir, m)); err != nil {
			return false
		}
	}
	return true
}

// dynamicSetup checks that the dynamic path can run with the stage's
// config and prepares its settings; it returns the modules to load.
func (s *Stage) dynamicSetup() ([]string, error) {
	cfg := s.cfg
	switch {
	case cfg.Mode != "" && cfg.Mode != ModeSupervised:
		return nil, errors.New("nginx dynamic path: supervised mode only")
	case cfg.TemplatePath != "":
		return nil, errors.New("nginx dynamic path: a custom template renders routes itself; turn one of them off")
	case cfg.IncludeDir != "":
		return nil, errors.New("nginx dynamic path: per-vhost include files need a server per vhost; turn one of them off")
	}
	dir := cfg.ModulesDir
	if dir == "" {
		dir = DefaultModulesDir
	}
	if !LuaAvailable(dir) {
		return nil, fmt.Errorf("nginx dynamic path: no Lua module in %s (Debian: apt-get install libnginx-mod-http-lua)", dir)
	}
	paths := render.NewDynamicPaths(cfg.Dir)
	// sun_path holds 108 bytes with its NUL.
	if len(paths.ControlSocket) > 107 {
		return nil, fmt.Errorf("nginx dynamic path: control socket %s: longer than a unix socket path may be (%d > 107 bytes); use a shorter nginx dir",
			paths.ControlSocket, len(paths.ControlSocket))
	}
	s.settings.Dynamic = &paths
	s.pusher = &dynamic.Pusher{Control: dynamic.NewControl(paths.ControlSocket), StateFile: paths.StateFile}
	mods := make([]string, len(luaModules))
	for i, m := range luaModules {
		mods[i] = filepath.Join(dir, m)
	}
	return mods, nil
}

// prepareDynamic writes what nginx reads at start: the Lua module, the
// fallback certificate, and the directory of the state file and control
// socket (0700: the socket is Portico's user's alone).
func (s *Stage) prepareDynamic() error {
	if s.pusher == nil {
		return nil
	}
	p := *s.settings.Dynamic
	d := filepath.Dir(p.ControlSocket)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return fmt.Errorf("nginx dynamic dir: %w", err)
	}
	if err := os.Chmod(d, 0o700); err != nil {
		return fmt.Errorf("nginx dynamic dir: %w", err)
	}
	if err := dynamic.WriteLua(p.LuaDir); err != nil {
		return err
	}
	return dynamic.Fallback(p.FallbackCert, p.FallbackKey)
}
