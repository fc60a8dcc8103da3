package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// TestRunLogsOneStartupAndOneShutdownLine: `portico run` logs exactly one
// line naming its HTTP, HTTPS and metrics addresses, its etcd endpoint and
// its data dir, logs no error on a first start up to its first route
// being live, and, on SIGTERM, exactly one line with the reason and the
// uptime.
func TestRunLogsOneStartupAndOneShutdownLine(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "runlog")
	// A container served from the start: the reporter's first records
	// reach the nginx stage while its nginx starts.
	host := "first-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "first", Network: net, Labels: map[string]string{"portico.vhost": host}})
	p := startRun(t, d, net)
	eventually(t, 15*time.Second, "the first route is live", func() error {
		return expect200(p.http, host, "name="+d.Name("first"))
	})
	ep, err := store.EmbeddedEndpoint(p.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	lines := func(msg string) []string {
		var out []string
		for _, l := range strings.Split(p.proc.Output(), "\n") {
			if strings.Contains(l, "msg=\""+msg+"\"") {
				out = append(out, l)
			}
		}
		return out
	}
	up := lines("portico started")
	if len(up) != 1 {
		t.Fatalf("%d startup lines, want 1: %q", len(up), up)
	}
	for _, want := range []string{"http=" + p.http, "https=" + p.https, "metrics=" + p.metrics,
		`etcd="` + ep + ` (embedded)"`, "data_dir=" + p.dataDir} {
		if !strings.Contains(up[0], want) {
			t.Errorf("startup line lacks %s: %s", want, up[0])
		}
	}
	if n := len(lines("portico stopped")); n != 0 {
		t.Errorf("%d shutdown lines while running", n)
	}
	// A first start is no error: the first pushes of the dynamic path may
	// race nginx creating its control socket; they wait for it quietly.
	for _, l := range strings.Split(p.proc.Output(), "\n") {
		if strings.Contains(l, "level=ERROR") {
			t.Errorf("error logged on a first start: %s", l)
		}
	}

	p.proc.Stop()
	down := lines("portico stopped")
	if len(down) != 1 {
		t.Fatalf("%d shutdown lines, want 1: %q\n%s", len(down), down, p.proc.Output())
	}
	for _, want := range []string{"level=INFO", "reason=", "terminated", "uptime="} {
		if !strings.Contains(down[0], want) {
			t.Errorf("shutdown line lacks %s: %s", want, down[0])
		}
	}
	t.Logf("startup: %s\nshutdown: %s", up[0], down[0])
}

// TestReloadLogSaysWhyAndStatusShowsNginx: the reload a new container
// causes is logged with why ("1 route added: <host>"), its removal too, and
// `portico status` shows each nginx instance's listen addresses and the time
// of its last apply (JSON: timestamps; text: "ago"), and exits 3 once a
// container is rejected.
func TestReloadLogSaysWhyAndStatusShowsNginx(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "why")
	p := startRun(t, d, net)
	host := "why-" + d.RunID + ".test"
	id := d.Run(t, dockertest.RunOptions{Name: "why", Network: net, Labels: map[string]string{"portico.vhost": host}})
	eventually(t, 15*time.Second, "route served", func() error { return expect200(p.http, host, "name="+d.Name("why")) })
	applied := func(why string) error {
		for _, l := range strings.Split(p.proc.Output(), "\n") {
			if strings.Contains(l, `msg="nginx config applied"`) && strings.Contains(l, why) {
				return nil
			}
		}
		return fmt.Errorf("no reload logged with %q", why)
	}
	eventually(t, 5*time.Second, "reload logged with why", func() error { return applied(`why="1 route added: ` + host + `"`) })

	st := statusJSON(t, "--data-dir", p.dataDir)
	ngs, _ := st["nginx"].([]any)
	if len(ngs) != 1 {
		t.Fatalf("nginx instances: %v", st["nginx"])
	}
	ng := ngs[0].(map[string]any)
	if fmt.Sprint(ng["http_addrs"]) != "["+p.http+"]" || fmt.Sprint(ng["https_addrs"]) != "["+p.https+"]" {
		t.Errorf("status listen addresses: http %v https %v, want %s and %s", ng["http_addrs"], ng["https_addrs"], p.http, p.https)
	}
	at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(ng["applied_at"]))
	if err != nil || time.Since(at) > time.Minute || time.Since(at) < -time.Minute {
		t.Errorf("status applied_at %v (%v), want a recent timestamp", ng["applied_at"], err)
	}
	out, err := exec.Command(binary, "status", "--data-dir", p.dataDir).CombinedOutput()
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, want := range []string{"listens: http " + p.http + "; https " + p.https, " ago)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("status text lacks %q:\n%s", want, out)
		}
	}

	// A rejected container: status still prints, and exits 3.
	d.Run(t, dockertest.RunOptions{Name: "rejected", Network: net, Labels: map[string]string{"portico.vhost": "bad-" + d.RunID + ".test", "portico.port": "eighty"}})
	eventually(t, 15*time.Second, "status exits 3 naming the rejected label", func() error {
		out, err := exec.Command(binary, "status", "--data-dir", p.dataDir).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != porticotest.StatusExitProblems {
			return fmt.Errorf("exit %v, want %d:\n%s", err, porticotest.StatusExitProblems, out)
		}
		if !strings.Contains(string(out), `portico.port="eighty"`) {
			return fmt.Errorf("output does not name the label:\n%s", out)
		}
		return nil
	})

	d.Remove(t, id)
	eventually(t, 15*time.Second, "removal logged with why", func() error { return applied(`why="1 route removed: ` + host + `"`) })
}
