package nginx

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/traffic"
)

// StdoutLog is the access log path that writes to Portico's standard
// output (--access-log -): nginx's stdout is then Portico's.
const StdoutLog = "/dev/stdout"

// trafficSetup decides whether nginx counts each site's traffic
// (cfg.Traffic) and prepares it; it returns the modules the static path
// must load for it (the dynamic path loads them already). Without the Lua
// module, or in external mode, nginx counts nothing: the stage logs why
// once and exports no per-site series (docs/metrics.md).
func (s *Stage) trafficSetup(modules []string) ([]string, error) {
	cfg := s.cfg
	if !cfg.Traffic {
		return modules, nil
	}
	var paths render.TrafficPaths
	switch {
	case s.settings.Dynamic != nil:
		paths = render.TrafficPaths{LuaDir: s.settings.Dynamic.LuaDir, ControlSocket: s.settings.Dynamic.ControlSocket}
	case cfg.Mode == ModeExternal:
		s.log.Info("per-site traffic metrics are off in external mode: Portico does not load modules into an nginx it does not run (docs/metrics.md)")
		return modules, nil
	case cfg.TemplatePath != "":
		s.log.Info("per-site traffic metrics are off with a custom template: copy its traffichttp and sitelog blocks from the built-in one to count (docs/metrics.md)")
		return modules, nil
	default:
		dir := cfg.ModulesDir
		if dir == "" {
			dir = DefaultModulesDir
		}
		if !LuaAvailable(dir) {
			s.log.Warn("per-site traffic metrics are off: nginx's Lua module is not installed (Debian: apt-get install libnginx-mod-http-lua); the access log still works", "modules_dir", dir)
			return modules, nil
		}
		dp := render.NewDynamicPaths(cfg.Dir)
		paths = render.TrafficPaths{LuaDir: dp.LuaDir, ControlSocket: dp.ControlSocket}
		if len(paths.ControlSocket) > 107 {
			return nil, fmt.Errorf("nginx traffic counters: control socket %s: longer than a unix socket path may be (%d > 107 bytes); use a shorter nginx dir",
				paths.ControlSocket, len(paths.ControlSocket))
		}
		modules = nil
		for _, m := range luaModules {
			modules = append(modules, filepath.Join(dir, m))
		}
	}
	s.settings.Traffic = &paths
	s.traffic = traffic.New(traffic.Config{Source: traffic.NewControl(paths.ControlSocket), Log: s.log.With("component", "traffic")})
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(s.traffic); err != nil {
			return nil, fmt.Errorf("nginx traffic metrics: %w", err)
		}
	}
	return modules, nil
}

// prepareTraffic writes the traffic Lua module and the control socket's
// directory (0700: the socket is Portico's user's alone).
func (s *Stage) prepareTraffic() error {
	t := s.settings.Traffic
	if t == nil {
		return nil
	}
	d := filepath.Dir(t.ControlSocket)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return fmt.Errorf("nginx control dir: %w", err)
	}
	if err := os.Chmod(d, 0o700); err != nil {
		return fmt.Errorf("nginx control dir: %w", err)
	}
	return traffic.WriteLua(t.LuaDir)
}

// Traffic is the per-site traffic monitor (a prometheus.Collector already
// registered, and the page's charts); nil when nginx counts nothing.
func (s *Stage) Traffic() *traffic.Monitor { return s.traffic }

// runTraffic samples the counters once nginx is up, until ctx ends.
func (s *Stage) runTraffic(ctx context.Context) {
	if s.traffic == nil {
		return
	}
	if s.sup != nil {
		select {
		case <-s.sup.Up():
		case <-ctx.Done():
			return
		}
	}
	s.traffic.Run(ctx)
}

// ReopenLogs has nginx reopen its log files (SIGUSR1), after a rotation
// moved them. External mode: nginx is someone else's to signal.
func (s *Stage) ReopenLogs() error {
	if s.sup == nil {
		return fmt.Errorf("nginx reopen logs: external mode: signal your nginx (nginx -s reopen)")
	}
	pid := s.sup.Pid()
	if pid == 0 {
		return fmt.Errorf("nginx reopen logs: nginx is not running")
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return fmt.Errorf("nginx reopen logs: signal master %d: %w", pid, err)
	}
	return nil
}
