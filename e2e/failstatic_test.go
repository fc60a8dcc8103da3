package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/testenv/dockertest"
)

// restartRun starts `portico run` again on p's data dir and addresses, as
// a restarted service would, without waiting for anything.
func restartRun(t *testing.T, d *dockertest.Env, p *pipeline, network string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"run",
		"--data-dir", p.dataDir,
		"--http-addr", p.http,
		"--https-addr", p.https,
		"--metrics-addr", p.metrics,
		"--network", network,
		"--host", "e2e-" + d.RunID,
		"--log-level", "debug",
		"--label-filter", dockertest.RunLabel + "=" + d.RunID,
	}, extra...)
	return start(t, nil, args...)
}

// exited waits up to d for pr to exit and reports whether it did.
func exited(pr *proc, d time.Duration) bool {
	select {
	case <-pr.Done():
		return true
	case <-time.After(d):
		return false
	}
}

// A second `portico run` on a data dir in use fails at once, naming the
// first one's pid; the first keeps serving.
func TestRunSecondInstanceOnSameDataDir(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "lock")
	p := startRun(t, d, net)

	second := &pipeline{dataDir: p.dataDir, http: addr(freePort(t)), https: addr(freePort(t)), metrics: addr(freePort(t))}
	t0 := time.Now()
	pr := restartRun(t, d, second, net)
	if !exited(pr, 10*time.Second) {
		t.Fatalf("second portico run still running after 10s:\n%s", pr.Output())
	}
	want := fmt.Sprintf("data dir %s in use by pid %d", p.dataDir, p.proc.Pid())
	if !strings.Contains(pr.Output(), want) {
		t.Errorf("output %q lacks %q", pr.Output(), want)
	}
	t.Logf("second instance exited after %s: %s", time.Since(t0).Round(time.Millisecond), strings.TrimSpace(pr.Output()))
	waitDefault404(t, p.http)
}

// A listen address another process holds is a fatal error naming it.
func TestRunListenAddressInUse(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	network := d.Network(t, "inuse")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := &pipeline{dataDir: t.TempDir(), http: l.Addr().String(), https: addr(freePort(t)), metrics: addr(freePort(t))}
	t0 := time.Now()
	pr := restartRun(t, d, p, network)
	if !exited(pr, 30*time.Second) {
		t.Fatalf("portico run still running 30s after its address was taken:\n%s", pr.Output())
	}
	want := "nginx cannot listen on " + p.http + ": address already in use"
	if !strings.Contains(pr.Output(), want) {
		t.Errorf("output lacks %q:\n%s", want, pr.Output())
	}
	if n := strings.Count(pr.Output(), "nginx died"); n > 0 {
		t.Errorf("%d restarts logged", n)
	}
	t.Logf("exited after %s", time.Since(t0).Round(time.Millisecond))
}

// The embedded etcd cannot start (its data dir is broken): nginx still
// serves the last good config, the failure is reported (log and
// portico_embedded_etcd_up 0), `portico run` keeps running and retrying,
// and SIGTERM ends it at once.
func TestRunEmbeddedEtcdFailureKeepsServing(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "etcdfail")
	p := startRun(t, d, net)
	host := "static-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "static", Network: net, Labels: vhostLabels(host)})
	eventually(t, 30*time.Second, "route live", func() error { return expect200(p.http, host, d.Name("static")) })
	p.proc.Stop()

	// etcd's dir becomes a file: every start of the embedded etcd fails.
	etcdDir := filepath.Join(p.dataDir, "etcd")
	if err := os.Rename(etcdDir, etcdDir+".saved"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(etcdDir, []byte("not a directory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pr := restartRun(t, d, p, net)
	eventually(t, 30*time.Second, "last good config served", func() error { return expect200(p.http, host, d.Name("static")) })
	eventually(t, 30*time.Second, "failure reported", func() error {
		if !strings.Contains(pr.Output(), "embedded etcd failed") {
			return fmt.Errorf("not in the log yet")
		}
		up, err := metric(p.metrics, "portico_embedded_etcd_up")
		if err != nil {
			return err
		}
		if up != 0 {
			return fmt.Errorf("portico_embedded_etcd_up %v", up)
		}
		synced, err := metric(p.metrics, "portico_nginx_store_synced")
		if err != nil {
			return err
		}
		if synced != 0 {
			return fmt.Errorf("portico_nginx_store_synced %v", synced)
		}
		return nil
	})
	total, failed, errs := hammer(p.http, host, d.Name("static"), 3*time.Second)
	if failed > 0 || total == 0 {
		t.Errorf("%d of %d requests failed while etcd was failing: %v", failed, total, errs)
	}
	if exited(pr, 0) {
		t.Fatalf("portico run exited:\n%s", pr.Output())
	}

	// Repaired: etcd starts on the next try and changes flow again.
	if err := os.Remove(etcdDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(etcdDir+".saved", etcdDir); err != nil {
		t.Fatal(err)
	}
	late := "late-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "late", Network: net, Labels: vhostLabels(late)})
	eventually(t, 90*time.Second, "change after etcd recovered", func() error { return expect200(p.http, late, d.Name("late")) })

	t0 := time.Now()
	pr.Stop()
	t.Logf("stopped %s after SIGTERM", time.Since(t0).Round(time.Millisecond))
}

// SIGTERM is honoured while the embedded etcd cannot start.
func TestRunSIGTERMDuringFailingStart(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "sigterm")
	p := &pipeline{dataDir: t.TempDir(), http: addr(freePort(t)), https: addr(freePort(t)), metrics: addr(freePort(t))}
	if err := os.WriteFile(filepath.Join(p.dataDir, "etcd"), []byte("not a directory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pr := restartRun(t, d, p, net)
	eventually(t, 30*time.Second, "failure reported", func() error {
		if !strings.Contains(pr.Output(), "embedded etcd failed") {
			return fmt.Errorf("not in the log yet")
		}
		return nil
	})
	t0 := time.Now()
	pr.Stop()
	if el := time.Since(t0); el > 5*time.Second {
		t.Errorf("SIGTERM took %s", el)
	}
}

// A restart after one vhost's include broke keeps the other sites: the
// failing vhost is left out and named in the status, the rest is served.
// Before, the refused first render was replaced by an empty config and
// every site answered 404.
func TestRunRestartWithOneBadInputKeepsSites(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "badinput")
	inc := t.TempDir()
	p := startRun(t, d, net, "--include-dir", inc)
	good, bad := "good-"+d.RunID+".test", "bad-"+d.RunID+".test"
	d.Run(t, dockertest.RunOptions{Name: "good", Network: net, Labels: vhostLabels(good)})
	d.Run(t, dockertest.RunOptions{Name: "bad", Network: net, Labels: vhostLabels(bad)})
	eventually(t, 30*time.Second, "both live", func() error {
		if err := expect200(p.http, good, d.Name("good")); err != nil {
			return err
		}
		return expect200(p.http, bad, d.Name("bad"))
	})
	p.proc.Stop()
	if err := os.MkdirAll(filepath.Join(inc, bad), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inc, bad, "x.conf"), []byte("location / { return 200; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.proc = restartRun(t, d, p, net, "--include-dir", inc)
	eventually(t, 60*time.Second, "good site served after the restart", func() error { return expect200(p.http, good, d.Name("good")) })
	eventually(t, 30*time.Second, "status names the bad vhost", func() error {
		st := statusJSON(t, "--data-dir", p.dataDir)
		b := fmt.Sprint(st)
		if !strings.Contains(b, bad) || !strings.Contains(b, "left out 1 route") {
			return fmt.Errorf("status %v", b)
		}
		return nil
	})
	if code, _, err := get(p.http, bad); err != nil || code != 404 {
		t.Errorf("bad vhost: %d %v", code, err)
	}
	if err := expect200(p.http, good, d.Name("good")); err != nil {
		t.Error(err)
	}
}
