package nginx

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/routing"
)

// TestStageExternal runs nginx the way a distribution does (daemonised,
// with a pid file) and the stage in external mode: it writes ConfPath,
// tests the system main config and reloads by the pid file.
func TestStageExternal(t *testing.T) {
	sys, err := os.MkdirTemp("", "portico-sysnginx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sys) })
	confPath := filepath.Join(sys, "conf.d", "portico.conf")
	mc := render.MainConf{Prefix: sys, Include: confPath}
	main, err := mc.Render()
	if err != nil {
		t.Fatal(err)
	}
	mainPath := filepath.Join(sys, "nginx.conf")
	for _, d := range append(mc.Dirs(), filepath.Dir(confPath)) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(mainPath, main, 0o644); err != nil {
		t.Fatal(err)
	}
	// The system's own config before Portico's first write.
	if err := os.WriteFile(confPath, []byte("# empty\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	httpAddr := freeAddr(t)
	boot, err := render.Render(render.Input{Settings: render.Settings{HTTPAddrs: []string{httpAddr}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(confPath, boot, 0o644); err != nil {
		t.Fatal(err)
	}
	// A file, not a pipe, for its output: the daemon keeps stderr open.
	logf, err := os.Create(filepath.Join(sys, "logs", "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	start := exec.Command(nginxBin, "-p", sys, "-c", mainPath)
	start.Stdout, start.Stderr = logf, logf
	if err := start.Run(); err != nil {
		out, _ := os.ReadFile(logf.Name())
		t.Fatalf("start system nginx: %v\n%s", err, out)
	}
	pidFile := filepath.Join(sys, "logs", "nginx.pid")
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGQUIT)
			}
		}
	})

	tmpl := filepath.Join(sys, "t.tmpl")
	text := render.DefaultTemplate() + `{{range .Vhosts}}{{if eq .Host "broken.test"}}broken {{"{"}}{{end}}{{end}}`
	if err := os.WriteFile(tmpl, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	h := startStage(t, false, func(c *Config) {
		c.TemplatePath = tmpl
		c.Mode, c.Dynamic = ModeExternal, false
		c.ConfPath = confPath
		c.MainConfig = mainPath
		c.PidFile = pidFile
		c.HTTPAddrs = []string{httpAddr}
	})
	a := echoServer(t, "A")
	h.putContainer("a1", a, map[string]string{routing.LabelVhost: "ext.test"})
	h.want("ext.test", 200, "A host=ext.test")

	// A config nginx refuses is rolled back: the file on disk stays good.
	good, err := os.ReadFile(confPath)
	if err != nil {
		t.Fatal(err)
	}
	h.putContainer("b1", a, map[string]string{routing.LabelVhost: "broken.test"})
	h.eventually("the refused config reported", func() error {
		if st := h.status(); !strings.Contains(st.Error, "nginx -t") {
			return os.ErrNotExist
		}
		return nil
	})
	if now, _ := os.ReadFile(confPath); !bytes.Equal(now, good) {
		t.Errorf("refused config left in place:\n%s", now)
	}
	h.want("ext.test", 200, "A host=ext.test")
}
