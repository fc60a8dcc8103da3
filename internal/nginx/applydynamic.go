package nginx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/portico/portico/internal/nginx/dynamic"
	"github.com/portico/portico/internal/routing"
)

// apply puts routes and certificates in place: pushed to the dynamic path
// when the stage runs it, else rendered into the config (applyRoutes).
func (s *Stage) apply(ctx context.Context, routes []routing.Route, refs []CertRef) outcome {
	if s.pusher == nil {
		return s.applyRoutes(ctx, routes, refs)
	}
	return s.applyDynamic(ctx, routes, refs)
}

// applyDynamic keeps the static config (settingsConf, rendered once: a
// no-op after the first time) and pushes the route
// table and certificates: no nginx -t, no reload.
func (s *Stage) applyDynamic(ctx context.Context, routes []routing.Route, refs []CertRef) outcome {
	all := hostsOf(routes)
	conf := s.settingsConf
	if conf == nil { // the settings did not render at New
		_, err := Render(Input{Settings: s.settings})
		return outcome{errRoutes: all, err: &RenderError{Err: errors.Join(err, errors.New("no config for these settings"))}}
	}
	res, err := s.applier.Apply(ctx, conf)
	if err != nil {
		return outcome{res: res, errRoutes: all, err: err}
	}
	table, certs, err := DynamicTable(routes, refs, s.settings, s.certs.Dir)
	if err != nil {
		return outcome{res: res, errRoutes: all, err: &RenderError{Err: err}}
	}
	body, version, err := table.Encode()
	if err != nil {
		return outcome{res: res, errRoutes: all, err: &RenderError{Err: err}}
	}
	changed, err, serr := s.pusher.Push(ctx, body, version, certs)
	if serr != nil {
		serr = &WriteError{What: "dynamic path state file", Path: s.pusher.StateFile, Err: serr,
			Serving: "nginx serves the pushed routes; a restarted nginx would load the previous state"}
	}
	if err != nil && s.sup.Pid() != 0 {
		return outcome{res: res, errRoutes: all, err: errors.Join(fmt.Errorf("push to nginx: %w", err), serr)}
	}
	if err != nil || s.sup.Pid() == 0 {
		// With no nginx running, the state file is what the next start
		// loads: not written, nothing is applied.
		if serr != nil {
			return outcome{res: res, errRoutes: all, err: serr}
		}
	}
	h := sha256.Sum256([]byte(res.Hash + version))
	res.Hash = hex.EncodeToString(h[:])
	res.Changed = res.Changed || changed
	// Pushed: live, whether or not the state file was written.
	return outcome{res: res, applied: routes, err: serr}
}

// DynamicTable is the dynamic path's table for routes (checked by
// CheckRoutes) and the certificates it names, decided as Render decides
// them. certDir is where CertFiles wrote the certificates, which it
// checked (CheckCertPEM) before making refs; nginx parses each again
// before it stores it.
func DynamicTable(routes []routing.Route, refs []CertRef, st Settings, certDir string) (dynamic.Table, []dynamic.Cert, error) {
	v, err := buildView(Input{Settings: Settings{HTTPAddrs: st.HTTPAddrs, HTTPSAddrs: st.HTTPSAddrs, NginxVersion: st.NginxVersion}})
	if err != nil {
		return dynamic.Table{}, nil, err
	}
	tls := len(v.TLSListens) > 0
	t := dynamic.Table{RedirectPort: v.RedirectPort, Routes: make([]dynamic.Route, 0, len(routes))}
	byID := map[string]dynamic.Cert{}
	// By host, as Render: the first default route by host wins.
	routes = slices.Clone(routes)
	slices.SortFunc(routes, func(a, b routing.Route) int { return strings.Compare(a.Host, b.Host) })
	for _, r := range routes {
		d := dynamic.Route{Host: r.Host, Scheme: r.Protocol}
		if d.Scheme == "" {
			d.Scheme = routing.ProtoHTTP
		}
		for _, a := range r.Upstreams {
			n, err := upstreamAddr(a)
			if err != nil {
				return dynamic.Table{}, nil, fmt.Errorf("route %q: %w", r.Host, err)
			}
			d.Peers = append(d.Peers, n)
		}
		slices.Sort(d.Peers)
		d.Peers = slices.Compact(d.Peers)
		if c, redirect, ok := routeTLS(r, refs, tls); ok {
			if !ValidHost(c.Primary) {
				return dynamic.Table{}, nil, fmt.Errorf("route %q: certificate name %q is not a host name", r.Host, c.Primary)
			}
			id := dynamic.CertID(c.FullChain, c.Key)
			if _, ok := byID[id]; !ok {
				dir := filepath.Join(certDir, dirName(c.Primary))
				byID[id] = dynamic.Cert{ID: id, FullChain: c.FullChain, Key: c.Key,
					FullChainFile: filepath.Join(dir, "fullchain.pem"), KeyFile: filepath.Join(dir, "privkey.pem")}
			}
			d.Cert, d.Redirect, d.HSTS = id, redirect, r.HSTS
		}
		if r.Default && t.Default == "" {
			t.Default = r.Host
		}
		t.Routes = append(t.Routes, d)
	}
	certs := make([]dynamic.Cert, 0, len(byID))
	for _, c := range byID {
		certs = append(certs, c)
	}
	slices.SortFunc(certs, func(a, b dynamic.Cert) int { return strings.Compare(a.ID, b.ID) })
	return t, certs, nil
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
	paths := NewDynamicPaths(cfg.Dir)
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
