package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portico/portico/internal/certs/localca"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
)

// TestDynamicPathEndToEnd drives nginx's dynamic path (docs/nginx.md) with
// real containers through `portico run`: a vhost added (HTTP, then HTTPS
// verified against the local CA), a replica joining and leaving, the
// certificate swapped, the vhost removed, all with no reload; then nginx's
// master killed (the restarted nginx serves the pushed routes from its
// state file), then portico killed with SIGKILL (its nginx keeps serving
// alone, and the next portico takes over and serves a new container).
func TestDynamicPathEndToEnd(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "dynamic")
	p := startRun(t, d, net, "--nginx-dynamic", "on")
	reloads := func() float64 {
		t.Helper()
		v, err := metric(p.metrics, "portico_nginx_reloads_total")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	base := reloads()

	// Add.
	host := "dyn-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "a", Network: net, Labels: vhostLabels(host)})
	eventually(t, 15*time.Second, "vhost live over HTTP", func() error { return expect200(p.http, host, "name="+d.Name("a")) })
	cli, err := store.Connect(store.Config{Endpoints: []string{mustEndpoint(t, p.dataDir)}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	roots := localRoots(t, cli)
	var serial string
	eventually(t, 20*time.Second, "vhost live over HTTPS with a local-CA certificate", func() error {
		var err error
		serial, err = servedSerial(p.https, host, "name="+d.Name("a"), roots)
		return err
	})

	// Replica churn.
	b := d.Run(t, dockertest.RunOptions{Name: "b", Network: net, Labels: vhostLabels(host)})
	eventually(t, 15*time.Second, "the new replica answers too", func() error {
		for range 10 {
			if expect200(p.http, host, "name="+d.Name("b")) == nil {
				return nil
			}
		}
		return fmt.Errorf("replica b never answered")
	})
	d.Remove(t, b)
	eventually(t, 15*time.Second, "the removed replica left", func() error {
		for range 6 {
			if err := expect200(p.http, host, "name="+d.Name("a")); err != nil {
				return err
			}
		}
		return nil
	})

	// Certificate swap, as a renewal writes it.
	keys := store.NewKeys(store.DefaultPrefix)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nb, err := localca.New(cli, keys, localca.Options{}).Obtain(ctx, []string{host})
	if err != nil {
		t.Fatal(err)
	}
	v, err := store.Encode(nb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, keys.CertBundle(host), string(v)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the swapped certificate served", func() error {
		s, err := servedSerial(p.https, host, "name="+d.Name("a"), roots)
		if err == nil && (s == serial || !strings.EqualFold(s, nb.Serial)) {
			err = fmt.Errorf("serial %s, want %s", s, nb.Serial)
		}
		return err
	})

	// Remove.
	other := "dyn2-" + d.RunID + ".test"
	c := d.Run(t, dockertest.RunOptions{Name: "c", Network: net, Labels: vhostLabels(other)})
	eventually(t, 15*time.Second, "second vhost live", func() error { return expect200(p.http, other, "name="+d.Name("c")) })
	d.Remove(t, c)
	eventually(t, 15*time.Second, "removed vhost gone", func() error {
		code, _, err := get(p.http, other)
		if err == nil && code != 404 {
			err = fmt.Errorf("%s: %d", other, code)
		}
		return err
	})
	if got := reloads(); got != base {
		t.Errorf("nginx reloaded %v times across route and certificate changes; want none", got-base)
	}

	// nginx's master killed: the restarted nginx serves from its state
	// file before anything is pushed again.
	pidFile := filepath.Join(p.dataDir, "nginx", "logs", "nginx.pid")
	old := nginxMaster(t, pidFile)
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "nginx restarted and the route serves", func() error {
		if pid, err := readPid(pidFile); err != nil || pid == old || !alive(pid) {
			return fmt.Errorf("nginx master not replaced yet (%v)", err)
		}
		return expect200(p.http, host, "name="+d.Name("a"))
	})
	if _, err := servedSerial(p.https, host, "name="+d.Name("a"), roots); err != nil {
		t.Errorf("HTTPS after nginx restarted: %v", err)
	}

	// portico killed: its nginx serves on, alone.
	master := nginxMaster(t, pidFile)
	p.proc.Kill()
	<-p.proc.Done()
	t.Cleanup(func() {
		if alive(master) {
			syscall.Kill(-master, syscall.SIGKILL)
		}
	})
	for i := range 5 {
		if err := expect200(p.http, host, "name="+d.Name("a")); err != nil {
			t.Fatalf("request %d with portico killed: %v", i, err)
		}
	}
	restartRun(t, d, p, net, "--nginx-dynamic", "on")
	late := "dyn3-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "late", Network: net, Labels: vhostLabels(late)})
	eventually(t, 60*time.Second, "a container started after the restart goes live", func() error {
		return expect200(p.http, late, "name="+d.Name("late"))
	})
	if err := expect200(p.http, host, "name="+d.Name("a")); err != nil {
		t.Errorf("the first vhost after the restart: %v", err)
	}
	if st, err := os.Stat(filepath.Join(p.dataDir, "nginx", "dynamic")); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("dynamic dir: %v %v, want 0700", st.Mode(), err)
	}
}

func mustEndpoint(t *testing.T, dataDir string) string {
	t.Helper()
	ep, err := store.ReadEndpoint(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}
