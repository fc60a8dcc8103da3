package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/testenv/dockertest"
)

// TestUIShowsLiveRoutesInBrowser opens the operators' page in headless
// Chromium, starts containers, and watches the page change without a
// reload: the new route, a rejected container's error (container, label,
// value), and hostile label text shown as text.
func TestUIShowsLiveRoutesInBrowser(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "ui")
	uiAddr := addr(freePort(t))
	// A token, though the address is loopback: the browser goes through
	// the first-load ?token= and cookie path.
	token := "ui-token-" + d.RunID
	tokenFile := filepath.Join(t.TempDir(), "ui-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startRun(t, d, net, "--ui-addr", uiAddr, "--ui-token-file", tokenFile)
	if out := p.proc.Output(); !strings.Contains(out, "http://"+uiAddr+"/") {
		t.Errorf("startup log does not name the page's address %s", uiAddr)
	}

	b := startBrowser(t)
	b.navigate(t, "http://"+uiAddr+"/?token="+token)
	js := func(what, expr string) func() error {
		return func() error {
			var ok bool
			if err := b.eval(expr, &ok); err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%s: not yet", what)
			}
			return nil
		}
	}
	eventually(t, 20*time.Second, "the page is live", js("live",
		`document.getElementById("conn").textContent === "live" && location.search === ""`))
	// Set on this document: a reload would lose it.
	if err := b.eval(`(window.__porticoNoReload = true)`, new(bool)); err != nil {
		t.Fatal(err)
	}

	host := "ui-" + d.RunID + ".test"
	t0 := time.Now()
	d.Run(t, dockertest.RunOptions{Name: "web", Network: net, Labels: map[string]string{"portico.vhost": host}})
	d.Run(t, dockertest.RunOptions{Name: "bad", Network: net, Labels: map[string]string{
		"portico.vhost": "bad-" + d.RunID + ".test", "portico.port": "eighty"}})
	// No spaces or commas: the vhost label is a list split on them.
	const hostile = `<img/src=x/onerror=window.__pwned=1><script>window.__pwned=2</script>`
	d.Run(t, dockertest.RunOptions{Name: "evil", Network: net, Labels: map[string]string{"portico.vhost": hostile}})

	text := func(id string) string { return fmt.Sprintf(`document.getElementById(%q).textContent`, id) }
	eventually(t, 30*time.Second, "the new route with its replica on the page", js("route",
		fmt.Sprintf(`%s.includes(%q) && %s.includes(%q)`, text("routes"), host, text("routes"), d.Name("web"))))
	t.Logf("docker run (three containers) -> route on the page: %s", time.Since(t0).Round(time.Millisecond))
	eventually(t, 30*time.Second, "the rejected container's error on the page", js("problem",
		fmt.Sprintf(`%s.includes(%q) && %s.includes("portico.port") && %s.includes("eighty")`, text("problems"), d.Name("bad"), text("problems"), text("problems"))))
	eventually(t, 30*time.Second, "the hostile label shown as text", func() error {
		var s string
		if err := b.eval(text("problems"), &s); err != nil {
			return err
		}
		if !strings.Contains(s, d.Name("evil")) || !strings.Contains(s, hostile) {
			return fmt.Errorf("problems show %q", s)
		}
		return nil
	})
	eventually(t, 30*time.Second, "an nginx instance with its applied config", js("nginx",
		fmt.Sprintf(`%s.includes(%q)`, text("nginx"), "http "+p.http)))

	var checks struct {
		NoReload bool `json:"noReload"`
		Pwned    any  `json:"pwned"`
		Injected int  `json:"injected"`
		Groups   int  `json:"groups"`
	}
	if err := b.eval(`({noReload: window.__porticoNoReload === true, pwned: window.__pwned ?? null,
		injected: document.querySelectorAll("main img, main script").length,
		groups: document.querySelectorAll("#containers h3").length})`, &checks); err != nil {
		t.Fatal(err)
	}
	if !checks.NoReload {
		t.Error("the page was reloaded: updates must arrive live")
	}
	if checks.Pwned != nil || checks.Injected != 0 {
		t.Errorf("hostile text ran or became markup: pwned=%v, %d img/script elements", checks.Pwned, checks.Injected)
	}
	if checks.Groups < 1 {
		t.Error("containers are not grouped by Docker host")
	}

	dir := artifactDir(t)
	for _, s := range []struct {
		name   string
		width  int
		mobile bool
	}{{"ui-desktop.png", 1280, false}, {"ui-phone.png", 390, true}} {
		path := filepath.Join(dir, s.name)
		if err := b.screenshot(path, s.width, s.mobile); err != nil {
			t.Errorf("screenshot %s: %v", s.name, err)
			continue
		}
		t.Logf("screenshot: %s", path)
	}
}

// TestUIRefusesNonLoopbackWithoutToken: `portico run --ui-addr 0.0.0.0:…`
// without a token does not start (exit code 2), and says what to do.
func TestUIRefusesNonLoopbackWithoutToken(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(binary, "run", "--data-dir", t.TempDir(), "--ui-addr", "0.0.0.0:"+fmt.Sprint(freePort(t)))
	cmd.Env = append(os.Environ(), "PORTICO_UI_TOKEN=", "PORTICO_UI_TOKEN_FILE=")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want code 2; output: %s", err, out)
	}
	if !strings.Contains(string(out), "not loopback") || !strings.Contains(string(out), "--ui-token-file") {
		t.Errorf("output does not explain: %s", out)
	}
}
