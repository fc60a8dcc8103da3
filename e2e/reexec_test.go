package e2e

// A restart in place (SIGHUP; docs/nginx.md "Restart and upgrade without
// a gap"): `portico run` stops its stages, leaves its nginx serving,
// replaces itself with the executable on disk (same pid) and adopts that
// nginx. Not one request fails.

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portico/portico/internal/testenv/dockertest"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// rxAdopted is what the restarted process logs once it adopted its nginx.
const rxAdopted = "restarted in place: adopted the nginx this process ran before its exec"

// rxBinary copies the test's portico binary into a temp dir, so that the
// test may replace or remove it under a running process.
func rxBinary(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "portico")
	rxCopy(t, binary, dst)
	return dst
}

func rxCopy(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// rxStartRun is startRun with another portico binary.
func rxStartRun(t *testing.T, d *dockertest.Env, bin, network string, extra ...string) *pipeline {
	t.Helper()
	p := &pipeline{dataDir: t.TempDir(), http: addr(freePort(t)), https: addr(freePort(t)), metrics: addr(freePort(t))}
	args := append([]string{"run", "--data-dir", p.dataDir, "--http-addr", p.http, "--https-addr", p.https,
		"--metrics-addr", p.metrics, "--network", network, "--host", "e2e-" + d.RunID, "--log-level", "debug",
		"--label-filter", dockertest.RunLabel + "=" + d.RunID}, extra...)
	p.proc = porticotest.Start(t, bin, nil, args...)
	waitDefault404(t, p.http)
	return p
}

// rxHangup sends SIGHUP to portico and waits until the process (the same
// pid) has adopted its nginx again: the log past from holds the line.
func rxHangup(t *testing.T, p *pipeline, from int) {
	t.Helper()
	if err := syscall.Kill(p.proc.Pid(), syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP to portico: %v", err)
	}
	eventually(t, 60*time.Second, "portico restarted in place and adopted its nginx", func() error {
		select {
		case <-p.proc.Done():
			t.Fatalf("portico exited after SIGHUP")
		default:
		}
		if !strings.Contains(p.proc.Output()[from:], rxAdopted) {
			return fmt.Errorf("no adoption logged yet")
		}
		return nil
	})
}

// TestRunRestartInPlace sends SIGHUP three times to `portico run` under a
// steady request loop, on both nginx paths: 0 failed requests, the same
// nginx master and the same portico pid throughout, the executable
// replaced on disk before the first SIGHUP is the one that runs after it,
// a container started afterwards goes live, and SIGTERM still stops
// everything, nginx included.
func TestRunRestartInPlace(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"static", "dynamic"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			d := dockertest.New(t)
			net := d.Network(t, "rx"+mode)
			extra := []string{"--nginx-dynamic", "off"}
			if mode == "dynamic" {
				extra = []string{"--nginx-dynamic", "on"}
			}
			bin := rxBinary(t)
			p := rxStartRun(t, d, bin, net, extra...)
			host := "rx-" + d.RunID + ".test"
			d.Run(t, dockertest.RunOptions{Name: "app", Network: net, Labels: vhostLabels(host)})
			eventually(t, 30*time.Second, "route live", func() error { return expect200(p.http, host, d.Name("app")) })
			if mode == "static" {
				waitApplied(t, p.proc.Output, host)
			}
			pidFile := filepath.Join(p.dataDir, "nginx", "logs", "nginx.pid")
			master := nginxMaster(t, pidFile)
			killGroupLater(t, master)
			pid := p.proc.Pid()

			// An upgrade: a new file (new inode) renamed over the binary.
			next := bin + ".new"
			rxCopy(t, binary, next)
			if err := os.Rename(next, bin); err != nil {
				t.Fatal(err)
			}
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); !strings.HasSuffix(exe, " (deleted)") {
				t.Fatalf("portico runs %q, want the replaced (deleted) file", exe)
			}

			l := startLoad(p.http, host, d.Name("app"))
			t0 := time.Now()
			for i := range 3 {
				from := len(p.proc.Output())
				rxHangup(t, p, from)
				if i == 0 {
					out := p.proc.Output()[from:]
					if !strings.Contains(out, "portico stopped") || !strings.Contains(out, "restarting in place") {
						t.Errorf("no stop line naming the restart in place before the exec")
					}
					if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || exe != bin {
						t.Errorf("after the restart portico runs %q (%v), want the new %s", exe, err, bin)
					}
				}
			}
			// Through the restarted portico: a new container goes live.
			host2 := "rx2-" + d.RunID + ".test"
			d.Run(t, dockertest.RunOptions{Name: "app2", Network: net, Labels: vhostLabels(host2)})
			eventually(t, 60*time.Second, "a container started after the restarts goes live", func() error {
				return expect200(p.http, host2, d.Name("app2"))
			})
			total, refused, wrong, errs := l.end()
			t.Logf("3 restarts in place of portico run (%s path): %d requests over %s, %d refused, %d wrong answers %v",
				mode, total, time.Since(t0).Round(time.Millisecond), refused, wrong, errs)
			if refused+wrong > 0 || total == 0 {
				t.Errorf("%d refused and %d wrong of %d requests across 3 restarts in place", refused, wrong, total)
			}
			if now, err := readPid(pidFile); err != nil || now != master {
				t.Errorf("nginx master %d (%v) after the restarts; want the same %d", now, err, master)
			}
			if p.proc.Pid() != pid || !alive(pid) {
				t.Errorf("portico pid %d (alive %v), want the same %d", p.proc.Pid(), alive(pid), pid)
			}
			// The data dir lock names the pid again: the new process took it.
			if b, err := os.ReadFile(filepath.Join(p.dataDir, "lock")); err != nil || strings.TrimSpace(string(b)) != fmt.Sprint(pid) {
				t.Errorf("data dir lock holds %q (%v), want pid %d", b, err, pid)
			}
			if n := strings.Count(p.proc.Output(), rxAdopted); n != 3 {
				t.Errorf("%d adoptions logged, want 3", n)
			}

			rxStopsAll(t, p, host, master)
		})
	}
}

// rxStopsAll checks that SIGTERM stops portico and its nginx.
func rxStopsAll(t *testing.T, p *pipeline, host string, master int) {
	t.Helper()
	p.proc.Stop()
	eventually(t, 20*time.Second, "nginx stopped by SIGTERM", func() error {
		if alive(master) {
			return fmt.Errorf("nginx master %d still runs", master)
		}
		if _, _, err := get(p.http, host); err == nil {
			return fmt.Errorf("%s still answers", p.http)
		}
		return nil
	})
}

// TestRunRestartInPlaceExecFails removes portico's binary before the
// SIGHUP: the exec fails, portico says why and starts again in the same
// process, adopting its nginx; no request fails.
func TestRunRestartInPlaceExecFails(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "rxfail")
	bin := rxBinary(t)
	p := rxStartRun(t, d, bin, net, "--nginx-dynamic", "off")
	host := "rxfail-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "app", Network: net, Labels: vhostLabels(host)})
	eventually(t, 30*time.Second, "route live", func() error { return expect200(p.http, host, d.Name("app")) })
	waitApplied(t, p.proc.Output, host)
	pidFile := filepath.Join(p.dataDir, "nginx", "logs", "nginx.pid")
	master := nginxMaster(t, pidFile)
	killGroupLater(t, master)
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	l := startLoad(p.http, host, d.Name("app"))
	from := len(p.proc.Output())
	rxHangup(t, p, from)
	total, refused, wrong, errs := l.end()
	if refused+wrong > 0 || total == 0 {
		t.Errorf("%d refused and %d wrong of %d requests across a failed exec %v", refused, wrong, total, errs)
	}
	if out := p.proc.Output()[from:]; !strings.Contains(out, "restart in place: exec "+bin) || !strings.Contains(out, "starting again in this process") {
		t.Errorf("the failed exec is not explained")
	}
	if now, err := readPid(pidFile); err != nil || now != master {
		t.Errorf("nginx master %d (%v); want the same %d", now, err, master)
	}
	rxStopsAll(t, p, host, master)
}
