package render

import (
	"slices"
	"strings"
	"testing"
)

// Workers that cannot enter the data dir buffer bodies in MainConf.TempDir.
func TestMainConfTempDir(t *testing.T) {
	for _, tt := range []struct {
		name, temp, want string
		wantErr          bool
	}{
		{name: "default under the prefix", want: "/data/nginx/temp"},
		{name: "outside the data dir", temp: "/tmp/portico-nginx-temp-1", want: "/tmp/portico-nginx-temp-1"},
		{name: "relative is refused", temp: "tmp", wantErr: true},
		{name: "nginx syntax is refused", temp: "/tmp/x;y", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mc := MainConf{Prefix: "/data/nginx", Include: "/data/nginx/portico.conf", TempDir: tt.temp}
			b, err := mc.Render()
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "nginx temp dir") {
					t.Fatalf("err = %v, want one naming the temp dir", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{"client_body_temp_path " + tt.want + "/client_body;", "proxy_temp_path " + tt.want + "/proxy;"} {
				if !strings.Contains(string(b), d) {
					t.Errorf("config lacks %q:\n%s", d, b)
				}
			}
			if !slices.Contains(mc.Dirs(), tt.want) {
				t.Errorf("Dirs() = %v, want %s among them", mc.Dirs(), tt.want)
			}
		})
	}
}
