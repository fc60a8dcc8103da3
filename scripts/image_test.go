package scripts_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// imageEnv is a copy of scripts/image and the Dockerfile's ARG BASE line in
// a temporary checkout, with stand-ins: go ("builds" the -o file),
// scripts/base-image (prints a tag) and docker, which logs its arguments;
// FAKE_LOCAL says whether `docker image inspect` finds the base, and
// FAKE_PULL whether `docker pull` succeeds ("ok"), fails ("fail") or hangs
// ("hang", as with no registry reachable behind a silent network).
func runImage(t *testing.T, env ...string) (out, dockerLog string, err error) {
	t.Helper()
	tmp := t.TempDir()
	repo, stubs := filepath.Join(tmp, "checkout"), filepath.Join(tmp, "stubs")
	log := filepath.Join(tmp, "docker.log")
	for _, d := range []string{filepath.Join(repo, "scripts"), stubs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile("image")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		filepath.Join(repo, "scripts", "image"):      string(b),
		filepath.Join(repo, "scripts", "base-image"): "#!/bin/sh\necho portico-test-base:stub\n",
		filepath.Join(repo, "Dockerfile"):            "ARG BASE=debian:trixie-slim\nFROM ${BASE}\n",
		filepath.Join(stubs, "go"): `#!/bin/sh
while [ $# -gt 0 ]; do [ "$1" = -o ] && { mkdir -p "$(dirname "$2")"; : > "$2"; }; shift; done
`,
		filepath.Join(stubs, "docker"): `#!/bin/sh
echo "docker $*" >> "` + log + `"
case "$1 $2" in
"image inspect") [ "$FAKE_LOCAL" = yes ] ;;
"pull -q") case "$FAKE_PULL" in ok) exit 0 ;; hang) exec sleep 300 ;; *) exit 1 ;; esac ;;
esac
`,
	}
	for f, body := range files {
		if err := os.WriteFile(f, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A bound for a hung script, not a measure of its speed.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repo, "scripts", "image"))
	cmd.Env = append([]string{"PATH=" + stubs + ":/usr/bin:/bin", "HOME=" + tmp, "PORTICO_REGISTRY_PROBE_TIMEOUT=1"}, env...)
	o, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("scripts/image hung:\n%s", o)
	}
	l, _ := os.ReadFile(log)
	return string(o), string(l), err
}

// TestImagePicksItsBase: scripts/image builds FROM the given BASE, else the
// Dockerfile's default when it is here or a registry gives it, else (no
// registry answering, at once or within the probe's timeout) FROM
// scripts/base-image's local base, saying so.
func TestImagePicksItsBase(t *testing.T) {
	for _, tt := range []struct {
		name     string
		env      []string
		wantBase string
		pulled   bool
		says     string
	}{
		{name: "given", env: []string{"BASE=my/base:1", "FAKE_PULL=hang"}, wantBase: "my/base:1"},
		{name: "default here", env: []string{"FAKE_LOCAL=yes", "FAKE_PULL=hang"}, wantBase: "debian:trixie-slim"},
		{name: "default pulled", env: []string{"FAKE_PULL=ok"}, wantBase: "debian:trixie-slim", pulled: true},
		{name: "no registry", env: []string{"FAKE_PULL=fail"}, wantBase: "portico-test-base:stub", pulled: true, says: "no registry"},
		{name: "registry hangs", env: []string{"FAKE_PULL=hang"}, wantBase: "portico-test-base:stub", pulled: true, says: "no registry"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, log, err := runImage(t, tt.env...)
			if err != nil {
				t.Fatalf("scripts/image: %v\n%s", err, out)
			}
			if want := "docker build --build-arg BASE=" + tt.wantBase + " -t portico:latest .\n"; !strings.Contains(log, want) {
				t.Errorf("docker calls:\n%s\nwant %q", log, want)
			}
			if got := strings.Contains(log, "docker pull"); got != tt.pulled {
				t.Errorf("docker calls:\n%s\npulled %v, want %v", log, got, tt.pulled)
			}
			if tt.says != "" && !strings.Contains(out, tt.says) {
				t.Errorf("output lacks %q:\n%s", tt.says, out)
			}
		})
	}
}
