package e2e

// The nginx stage never stops serving for a reason of its own: a portico
// killed with SIGKILL leaves its nginx serving and the next one adopts it
// (no connection refused), and a full disk ends nothing (issue 14, §3).

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portico/portico/internal/store/storetest"
	"github.com/portico/portico/internal/testenv/dockertest"
)

// load sends one request every 5 ms to host until stopped and counts the
// ones that failed: refused (or any transport error) and wrong answers.
type load struct {
	total, refused, wrong atomic.Int64
	mu                    sync.Mutex
	errs                  []string
	stop                  chan struct{}
	done                  chan struct{}
}

func startLoad(addr, host, want string) *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{})}
	t0 := time.Now()
	go func() {
		defer close(l.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			l.total.Add(1)
			code, body, err := porticoGet(addr, host)
			switch {
			case err != nil:
				l.refused.Add(1)
				l.note(fmt.Sprintf("%v at %s", err, time.Since(t0).Round(time.Millisecond)))
			case code != 200 || !strings.Contains(body, want):
				l.wrong.Add(1)
				l.note(fmt.Sprintf("%d at %s", code, time.Since(t0).Round(time.Millisecond)))
			}
		}
	}()
	return l
}

func porticoGet(addr, host string) (int, string, error) { return get(addr, host) }

func (l *load) note(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, s)
	}
}

// end stops the loop and returns what it counted.
func (l *load) end() (total, refused, wrong int64, errs []string) {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total.Load(), l.refused.Load(), l.wrong.Load(), l.errs
}

// waitApplied waits until the log (static path) says a config with host
// was applied: nginx's new workers answer before its old ones stop
// accepting, and the stage logs an apply only once they have.
func waitApplied(t *testing.T, out func() string, host string) {
	t.Helper()
	eventually(t, 30*time.Second, host+"'s config applied", func() error {
		for _, l := range strings.Split(out(), "\n") {
			if strings.Contains(l, `msg="nginx config applied"`) && strings.Contains(l, host) {
				return nil
			}
		}
		return fmt.Errorf("no apply of %s logged yet", host)
	})
}

// killGroupLater kills, at the end of the test, the nginx process group of
// pid (a master the test learned from its own pid file) if it still runs.
func killGroupLater(t *testing.T, pid int) {
	t.Cleanup(func() {
		if alive(pid) {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
}

// TestRunAdoptsNginxAfterKill9 kills `portico run` with SIGKILL under a
// steady request loop and starts it again: the new portico adopts the
// nginx the dead one left (same master pid), not one request fails, a new
// container still goes live through it, and SIGTERM stops it as its own.
// On both paths: the static one (reload) and the dynamic one (push).
func TestRunAdoptsNginxAfterKill9(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"static", "dynamic"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			d := dockertest.New(t)
			net := d.Network(t, "adopt"+mode)
			extra := []string{"--nginx-dynamic", "off"}
			if mode == "dynamic" {
				extra = []string{"--nginx-dynamic", "on"}
			}
			p := startRun(t, d, net, extra...)
			host := "adopt-" + d.RunID + ".test"
			d.Run(t, dockertest.RunOptions{Name: "app", Network: net, Labels: vhostLabels(host)})
			eventually(t, 30*time.Second, "route live", func() error { return expect200(p.http, host, d.Name("app")) })
			if mode == "static" {
				waitApplied(t, p.proc.Output, host)
			}
			pidFile := filepath.Join(p.dataDir, "nginx", "logs", "nginx.pid")
			master := nginxMaster(t, pidFile)
			killGroupLater(t, master)

			l := startLoad(p.http, host, d.Name("app"))
			p.proc.Kill()
			restarted := time.Now()
			pr := restartRun(t, d, p, net, extra...)
			// Through the restarted portico: a new container goes live.
			host2 := "adopt2-" + d.RunID + ".test"
			d.Run(t, dockertest.RunOptions{Name: "app2", Network: net, Labels: vhostLabels(host2)})
			eventually(t, 60*time.Second, "a container started after the restart goes live", func() error {
				return expect200(p.http, host2, d.Name("app2"))
			})
			total, refused, wrong, errs := l.end()
			t.Logf("kill -9 of portico and restart (%s path): %d requests over %s, %d refused, %d wrong answers %v",
				mode, total, time.Since(restarted).Round(time.Millisecond), refused, wrong, errs)
			if refused+wrong > 0 || total == 0 {
				t.Errorf("%d refused and %d wrong of %d requests across the restart", refused, wrong, total)
			}
			if now, err := readPid(pidFile); err != nil || now != master {
				t.Errorf("nginx master %d (%v) after the restart; want the adopted %d", now, err, master)
			}
			if !strings.Contains(pr.Output(), "adopted the nginx a previous portico left running") {
				t.Errorf("the restart does not log the adoption")
			}

			// SIGTERM stops the adopted nginx too.
			pr.Stop()
			eventually(t, 20*time.Second, "adopted nginx stopped by SIGTERM", func() error {
				if alive(master) {
					return fmt.Errorf("nginx master %d still runs", master)
				}
				if _, _, err := get(p.http, host); err == nil {
					return fmt.Errorf("%s still answers", p.http)
				}
				return nil
			})
		})
	}
}

// fillDisk writes file until its filesystem has no space left.
func fillDisk(t *testing.T, file string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, size := range []int{1 << 20, 4096, 1} {
		buf := make([]byte, size)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill %s: %v", file, err)
				}
				break
			}
		}
	}
}

// fileState is a file's modification time and content.
type fileState struct {
	mtime time.Time
	body  string
}

// mtimes are the modification times and contents of the files nginx reads
// at start.
func mtimes(t *testing.T, files []string) map[string]fileState {
	t.Helper()
	m := map[string]fileState{}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m[f] = fileState{fi.ModTime(), string(b)}
	}
	return m
}

// TestRunFullDiskKeepsServing puts the data dir on a small tmpfs and fills
// it: the running portico does not exit and serves on, and the write that
// failed is named in status; a restart (portico killed with SIGKILL, then
// portico and its nginx both killed, as systemd's stop would) with the
// disk still full serves, rewriting none of the unchanged files; freed,
// the pending change goes live. On the dynamic path a push still goes live
// and only the state file is reported as failed. The store is an etcd
// outside the data dir: the embedded etcd's own full-disk failure is the
// store's (docs/store.md).
func TestRunFullDiskKeepsServing(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"static", "dynamic"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			d := dockertest.New(t)
			net := d.Network(t, "full"+mode)
			e := storetest.Start(t)
			p := &pipeline{dataDir: mountTmpfs(t, "16m"), http: addr(freePort(t)), https: addr(freePort(t)), metrics: addr(freePort(t))}
			args := []string{"--etcd-endpoints", e.Endpoint, "--nginx-dynamic", "off"}
			if mode == "dynamic" {
				args[3] = "on"
			}
			status := func() string {
				st, err := porticoStatus(e.Endpoint)
				if err != nil {
					return err.Error()
				}
				return st
			}
			p.proc = restartRun(t, d, p, net, args...)
			waitDefault404(t, p.http)
			host := "full-" + d.RunID + ".test"
			d.Run(t, dockertest.RunOptions{Name: "app", Network: net, Labels: vhostLabels(host)})
			eventually(t, 30*time.Second, "route live", func() error { return expect200(p.http, host, d.Name("app")) })
			ngx := filepath.Join(p.dataDir, "nginx")
			pidFile := filepath.Join(ngx, "logs", "nginx.pid")
			master := nginxMaster(t, pidFile)
			killGroupLater(t, master)

			fillDisk(t, filepath.Join(p.dataDir, "filler"))
			// A change on a full disk.
			late := "fulllate-" + d.RunID + ".test"
			d.Run(t, dockertest.RunOptions{Name: "late", Network: net, Labels: vhostLabels(late)})
			if mode == "dynamic" {
				// Pushed: live at once; only the state file is reported.
				eventually(t, 30*time.Second, "change pushed on a full disk", func() error { return expect200(p.http, late, d.Name("late")) })
				check(t, 30*time.Second, "status names the state file, not the routes", func() error {
					s := status()
					if !strings.Contains(s, "state file") || !strings.Contains(s, "no space left on device") || !strings.Contains(s, "serves the pushed routes") {
						return fmt.Errorf("status: %s", s)
					}
					if strings.Contains(s, late) && strings.Contains(s, "routes: "+late) {
						return fmt.Errorf("status reports the routes as failed: %s", s)
					}
					return nil
				})
			} else {
				check(t, 30*time.Second, "status names the write that failed", func() error {
					if s := status(); !strings.Contains(s, "no space left on device") {
						return fmt.Errorf("status: %s", s)
					}
					return nil
				})
			}
			if exited(p.proc, 3*time.Second) {
				t.Fatalf("portico exited on a full disk:\n%s", p.proc.Output())
			}
			if err := expect200(p.http, host, d.Name("app")); err != nil {
				t.Errorf("on a full disk: %v", err)
			}

			// Restart 1: portico killed, its nginx left running.
			files := []string{filepath.Join(ngx, "nginx.conf"), filepath.Join(ngx, "portico.conf"), filepath.Join(ngx, "portico.conf.settings")}
			if mode == "dynamic" {
				files = append(files, filepath.Join(ngx, "lua", "portico.lua"), filepath.Join(ngx, "dynamic", "fallback.crt"))
			}
			before := mtimes(t, files)
			l := startLoad(p.http, host, d.Name("app"))
			p.proc.Kill()
			t0 := time.Now()
			p.proc = restartRun(t, d, p, net, args...)
			check(t, 30*time.Second, "restarted portico reads the store", func() error {
				v, err := metric(p.metrics, "portico_nginx_store_synced")
				if err == nil && v != 1 {
					err = fmt.Errorf("portico_nginx_store_synced %v", v)
				}
				return err
			})
			if exited(p.proc, 3*time.Second) {
				t.Errorf("portico restarted on a full disk exited:\n%s", p.proc.Output())
			}
			total, refused, wrong, errs := l.end()
			t.Logf("full disk, kill -9 of portico and restart (%s path): %d requests over %s, %d refused, %d wrong %v",
				mode, total, time.Since(t0).Round(time.Millisecond), refused, wrong, errs)
			if refused+wrong > 0 {
				t.Errorf("%d refused and %d wrong of %d requests across a restart on a full disk", refused, wrong, total)
			}

			// Restart 2: portico and nginx both killed; nginx starts anew
			// from the files on disk.
			l = startLoad(p.http, host, d.Name("app"))
			p.proc.Kill()
			syscall.Kill(-master, syscall.SIGKILL)
			eventually(t, 10*time.Second, "nginx gone", func() error {
				if alive(master) {
					return fmt.Errorf("nginx %d alive", master)
				}
				return nil
			})
			t0 = time.Now()
			p.proc = restartRun(t, d, p, net, args...)
			check(t, 30*time.Second, "a new nginx serves on a full disk", func() error { return expect200(p.http, host, d.Name("app")) })
			total, refused, wrong, _ = l.end()
			t.Logf("full disk, portico and nginx killed (%s path): serving again after %s; %d of %d requests refused, %d wrong",
				mode, time.Since(t0).Round(time.Millisecond), refused, total, wrong)
			if m, err := readPid(pidFile); err == nil {
				killGroupLater(t, m)
			}
			if exited(p.proc, 3*time.Second) {
				t.Errorf("portico restarted on a full disk exited:\n%s", p.proc.Output())
			}
			for f, now := range mtimes(t, files) {
				switch was := before[f]; {
				case now.body != was.body:
					// The change that waited for space (the late route)
					// was written with what nginx's start left of the
					// space reserve it freed: a new content, not a rewrite.
					t.Logf("%s: the pending change was written after the restart", f)
				case !now.mtime.Equal(was.mtime):
					t.Errorf("%s rewritten by a restart although unchanged", f)
				}
			}

			// Space again: the state is written, the change is applied.
			if err := os.Remove(filepath.Join(p.dataDir, "filler")); err != nil {
				t.Fatal(err)
			}
			eventually(t, 30*time.Second, "change live and error gone once space is free", func() error {
				if err := expect200(p.http, late, d.Name("late")); err != nil {
					return err
				}
				if s := status(); strings.Contains(s, "no space") {
					return fmt.Errorf("status: %s", s)
				}
				return nil
			})
			if mode == "dynamic" {
				b, err := os.ReadFile(filepath.Join(ngx, "dynamic", "state.txt"))
				if err != nil || !strings.Contains(string(b), late) {
					t.Errorf("state file lacks %s after space was freed: %v", late, err)
				}
			}
		})
	}
}

// porticoStatus is `portico status` (text) against the store at endpoint.
func porticoStatus(endpoint string) (string, error) {
	out, err := exec.Command(binary, "status", "--etcd-endpoints", endpoint).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 3) {
		return "", fmt.Errorf("portico status: %v: %s", err, out)
	}
	return string(out), nil
}
