package render

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portico/portico/internal/nginx/dynamic"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/traffic"
)

// TestTrafficAndAccessLogConfigs: both paths render the traffic counters
// (log phase in every server that answers clients, none in the control
// server) and the JSON access log, and the installed nginx with its Lua
// module accepts them.
func TestTrafficAndAccessLogConfigs(t *testing.T) {
	const mods = "/usr/lib/nginx/modules"
	for _, tc := range []struct {
		name    string
		dynamic bool
		query   bool
	}{{"static", false, false}, {"static query", false, true}, {"dynamic", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dp := NewDynamicPaths(dir)
			st := Settings{HTTPAddrs: []string{"127.0.0.1:8080"}, HTTPSAddrs: []string{"127.0.0.1:8443"}, NginxVersion: "1.22.1",
				Traffic:   &TrafficPaths{LuaDir: dp.LuaDir, ControlSocket: dp.ControlSocket},
				AccessLog: &AccessLog{Path: filepath.Join(dir, "access.log"), Query: tc.query}}
			in := Input{Settings: st}
			if tc.dynamic {
				in.Settings.Dynamic = &dp
			} else {
				in.Routes = []routing.Route{route("a.example.com", "10.0.0.2:80"),
					with(route("b.example.com", "10.0.0.3:80"), func(r *routing.Route) { r.HTTPS = routing.HTTPSOff })}
			}
			conf, err := Render(in)
			if err != nil {
				t.Fatal(err)
			}
			s := string(conf)
			servers := strings.Count(s, "\nserver {")
			logs := strings.Count(s, "log_by_lua_block")
			// Every server but the control endpoint's.
			if logs != servers-1 || strings.Count(s, "access_log "+st.AccessLog.Path+" portico_json;") != servers-1 {
				t.Errorf("%d servers, %d log_by_lua, access logs %d:\n%s", servers, logs, strings.Count(s, "portico_json;"), s)
			}
			if strings.Contains(s, "$portico_path") == tc.query {
				t.Errorf("query %v: path variable wrong:\n%s", tc.query, s)
			}
			if !strings.Contains(s, "escape=json") || !strings.Contains(s, "location = /traffic") {
				t.Errorf("no escape=json log format or no /traffic endpoint:\n%s", s)
			}
			if err := os.MkdirAll(filepath.Dir(dp.ControlSocket), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := traffic.WriteLua(dp.LuaDir); err != nil {
				t.Fatal(err)
			}
			if tc.dynamic {
				if err := dynamic.WriteLua(dp.LuaDir); err != nil {
					t.Fatal(err)
				}
				if err := dynamic.Fallback(dp.FallbackCert, dp.FallbackKey); err != nil {
					t.Fatal(err)
				}
			}
			inc := filepath.Join(dir, "portico.conf")
			if err := os.WriteFile(inc, conf, 0o644); err != nil {
				t.Fatal(err)
			}
			mainPath := filepath.Join(dir, "nginx.conf")
			mc := MainConf{Prefix: dir, Include: inc, Modules: []string{mods + "/ndk_http_module.so", mods + "/ngx_http_lua_module.so"}}
			if err := mc.Install(mainPath); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(nginxBin, "-t", "-q", "-p", dir, "-c", mainPath, "-g", "daemon off;").CombinedOutput(); err != nil {
				t.Errorf("nginx -t: %v\n%s\n%s", err, out, s)
			}
		})
	}
}
