package e2e

// Fault injection: each test breaks one part of the pipeline for real (etcd,
// Docker, nginx, portico itself, the reporter, the store's contents) and
// asserts what a user sees: requests keep succeeding, and the pipeline
// converges once the part is back.

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/certs/localca"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
	"github.com/portico/portico/internal/testenv/dockertest"
)

// TestFaultEtcdGoneFor30s kills an external etcd with SIGKILL for 30 s:
// nginx keeps serving the last config without a single failed request, and
// once etcd is back (same data dir, same port) a container change reaches
// nginx within 5 s.
func TestFaultEtcdGoneFor30s(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "etcdgone")
	etcd := startEtcdProc(t, etcdProcBinary(t), t.TempDir())
	httpAddr := addr(freePort(t))
	start(t, nil, "nginx", "--etcd-endpoints", etcd.url, "--data-dir", t.TempDir(), "--instance", "e2e-"+d.RunID,
		"--http-addr", httpAddr, "--https-addr", "", "--network", net)
	start(t, nil, "reporter", "--etcd-endpoints", etcd.url, "--host", "e2e-"+d.RunID, "--label-filter", dockertest.RunLabel+"="+d.RunID)

	host := "etcdgone-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "keep", Network: net, Labels: vhostLabels(host)})
	eventually(t, 30*time.Second, "route live", func() error { return expect200(httpAddr, host, d.Name("keep")) })

	etcd.kill(t)
	// A change while etcd is away: it must arrive after etcd returns.
	during := "during-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "during", Network: net, Labels: vhostLabels(during)})
	total, failed, errs := hammer(httpAddr, host, d.Name("keep"), 30*time.Second)
	t.Logf("etcd down 30s: %d requests, %d failed", total, failed)
	if failed > 0 || total == 0 {
		t.Errorf("%d of %d requests failed while etcd was down: %v", failed, total, errs)
	}

	etcd = etcd.restart(t)
	late := "late-" + d.RunID + ".test"
	changed := time.Now()
	d.Run(t, dockertest.RunOptions{Name: "late", Network: net, Labels: vhostLabels(late)})
	eventually(t, 5*time.Second, "change after etcd returned reaches nginx", func() error {
		if err := expect200(httpAddr, late, d.Name("late")); err != nil {
			return err
		}
		return expect200(httpAddr, during, d.Name("during"))
	})
	t.Logf("etcd back: container change live through nginx after %s", time.Since(changed).Round(time.Millisecond))
	if err := expect200(httpAddr, host, d.Name("keep")); err != nil {
		t.Error(err)
	}
}

// TestFaultDockerGone cuts the reporter's Docker socket, changes containers
// behind its back, and restores it: the records then match Docker exactly,
// no stale record and no lost container.
func TestFaultDockerGone(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	e := storetest.Start(t)
	fw := dockertest.NewForwarder(t)
	metrics := addr(freePort(t))
	node := "e2e-" + d.RunID
	start(t, nil, "reporter", "--etcd-endpoints", e.Endpoint, "--host", node, "--label-filter", dockertest.RunLabel+"="+d.RunID,
		"--docker-host", fw.Host(), "--metrics-addr", metrics)

	d.Run(t, dockertest.RunOptions{Name: "kept"})
	doomed := d.Run(t, dockertest.RunOptions{Name: "doomed"})
	stopped := d.Run(t, dockertest.RunOptions{Name: "stopped"})
	eventually(t, 15*time.Second, "records match docker before the cut", func() error {
		return recordsMatchDocker(t, d, e.Client, node)
	})

	fw.Cut()
	eventually(t, 15*time.Second, "reporter notices docker is gone", func() error {
		v, err := metric(metrics, "portico_reporter_docker_up")
		if err == nil && v != 0 {
			err = fmt.Errorf("docker_up = %v", v)
		}
		return err
	})
	d.Remove(t, doomed)
	d.Stop(t, stopped)
	d.Run(t, dockertest.RunOptions{Name: "born"})
	if recordsMatchDocker(t, d, e.Client, node) == nil {
		t.Fatal("records already match docker while the reporter is cut off")
	}

	fw.Restore(t)
	back := time.Now()
	eventually(t, 15*time.Second, "records match docker after it returned", func() error {
		return recordsMatchDocker(t, d, e.Client, node)
	})
	t.Logf("docker back -> records match: %s", time.Since(back).Round(time.Millisecond))
}

// TestFaultNginxMasterKilled kills the supervised nginx master with
// SIGKILL: portico restarts it from the config on disk and the route serves.
func TestFaultNginxMasterKilled(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "nginxkill")
	p := startRun(t, d, net)
	host := "nginxkill-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "app", Network: net, Labels: vhostLabels(host)})
	eventually(t, 15*time.Second, "route live", func() error { return expect200(p.http, host, d.Name("app")) })

	pidFile := filepath.Join(p.dataDir, "nginx", "logs", "nginx.pid")
	old := nginxMaster(t, pidFile)
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatalf("kill nginx master %d: %v", old, err)
	}
	killed := time.Now()
	eventually(t, 15*time.Second, "nginx restarted and route serves again", func() error {
		pid, err := readPid(pidFile)
		if err != nil {
			return err
		}
		if pid == old || !alive(pid) {
			return fmt.Errorf("nginx master %d not replaced yet", pid)
		}
		return expect200(p.http, host, d.Name("app"))
	})
	t.Logf("nginx master SIGKILL -> route serves again after %s", time.Since(killed).Round(time.Millisecond))
	// Still the pipeline's nginx: a new container goes live too.
	host2 := "nginxkill2-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "app2", Network: net, Labels: vhostLabels(host2)})
	eventually(t, 15*time.Second, "new route after the restart", func() error { return expect200(p.http, host2, d.Name("app2")) })
}

// TestFaultPorticoKilledDuringBurst kills `portico run` with SIGKILL while
// containers start: the config on disk is complete (nginx -t passes, nginx
// includes no temporary file), and the next `portico run` on the same data
// dir and ports serves every route, including ones created after it started
// (so a stale nginx left by the killed process does not keep the ports).
func TestFaultPorticoKilledDuringBurst(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "killburst")
	p := startRun(t, d, net)
	const n = 20
	vhost := func(i int) string { return fmt.Sprintf("kb%02d-%s.test", i, d.RunID) }
	ids := make([]string, n)
	for i := range n {
		ids[i] = d.Run(t, dockertest.RunOptions{Name: fmt.Sprintf("kb%02d", i), Network: net, NoStart: true,
			Labels: vhostLabels(vhost(i))})
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() { startContainer(t, d, id) })
	}
	eventually(t, 30*time.Second, "burst under way", func() error {
		for i := range n {
			if expect200(p.http, vhost(i), d.Name(fmt.Sprintf("kb%02d", i))) == nil {
				return nil
			}
		}
		return errors.New("no container of the burst live yet")
	})
	p.proc.Kill()
	wg.Wait()

	dir := filepath.Join(p.dataDir, "nginx")
	if out, err := exec.Command("nginx", "-t", "-q", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;").CombinedOutput(); err != nil {
		t.Errorf("config on disk after SIGKILL fails nginx -t: %v\n%s", err, out)
	}
	for _, f := range []string{"nginx.conf", "portico.conf"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if l := strings.TrimSpace(line); strings.HasPrefix(l, "include") && (strings.Contains(l, ".tmp") || strings.Contains(l, "candidate")) {
				t.Errorf("%s includes a temporary file: %q", f, l)
			}
		}
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmps) > 0 {
		t.Logf("temporary files left by the killed process (not included by nginx): %v", tmps)
	}
	if pid, err := readPid(filepath.Join(dir, "logs", "nginx.pid")); err == nil && alive(pid) {
		t.Logf("nginx master %d of the killed portico is still running", pid)
		// Whatever the restart does with it, it does not outlive the test.
		t.Cleanup(func() {
			if alive(pid) {
				syscall.Kill(-pid, syscall.SIGKILL)
			}
		})
	}

	restart := time.Now()
	start(t, nil, "run", "--data-dir", p.dataDir, "--http-addr", p.http, "--https-addr", p.https,
		"--metrics-addr", p.metrics, "--network", net, "--host", "e2e-"+d.RunID, "--log-level", "debug",
		"--label-filter", d.LabelFilter())
	eventually(t, 60*time.Second, "every route of the burst serves after the restart", func() error {
		for i := range n {
			if err := expect200(p.http, vhost(i), d.Name(fmt.Sprintf("kb%02d", i))); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("restart -> all %d routes serve: %s", n, time.Since(restart).Round(time.Millisecond))
	after := "kbafter-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "kbafter", Network: net, Labels: vhostLabels(after)})
	eventually(t, 20*time.Second, "container started after the restart goes live (the restarted portico's nginx serves)", func() error {
		return expect200(p.http, after, d.Name("kbafter"))
	})
}

// TestFaultReporterRestarted20Times restarts the reporter 20 times (SIGTERM
// and SIGKILL alternately) under continuous HTTP and HTTPS requests: no
// request fails and the certificate is never re-issued.
func TestFaultReporterRestarted20Times(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "rep20")
	e := storetest.Start(t)
	httpAddr, httpsAddr := addr(freePort(t)), addr(freePort(t))
	start(t, nil, "nginx", "--etcd-endpoints", e.Endpoint, "--data-dir", t.TempDir(), "--instance", "e2e-"+d.RunID,
		"--http-addr", httpAddr, "--https-addr", httpsAddr, "--network", net)
	start(t, nil, "certs", "--etcd-endpoints", e.Endpoint, "--network", net)
	node := "e2e-" + d.RunID
	startReporter := func() *proc {
		m := addr(freePort(t))
		r := start(t, nil, "reporter", "--etcd-endpoints", e.Endpoint, "--host", node, "--metrics-addr", m, "--label-filter", dockertest.RunLabel+"="+d.RunID)
		eventually(t, 30*time.Second, "reporter resynced", func() error {
			v, err := metric(m, "portico_reporter_resyncs_total")
			if err == nil && v < 1 {
				err = fmt.Errorf("resyncs_total = %v", v)
			}
			return err
		})
		return r
	}
	rep := startReporter()
	host := "rep20-" + d.RunID + ".test"
	want := d.Name("app")
	d.Run(t, dockertest.RunOptions{Name: "app", Network: net, Labels: vhostLabels(host)})
	var b0 store.CertBundle
	eventually(t, 30*time.Second, "certificate issued", func() error {
		var ok bool
		if b0, ok = bundle(t, e.Client, host); !ok {
			return fmt.Errorf("no bundle for %s", host)
		}
		return nil
	})
	roots := localRoots(t, e.Client)
	eventually(t, 15*time.Second, "route live over HTTP and HTTPS", func() error {
		if err := expect200(httpAddr, host, want); err != nil {
			return err
		}
		s, err := servedSerial(httpsAddr, host, want, roots)
		if err == nil && s != b0.Serial {
			err = fmt.Errorf("serving serial %s, stored %s", s, b0.Serial)
		}
		return err
	})

	stop := make(chan struct{})
	type result struct{ total, failed int }
	var httpRes, tlsRes result
	var errs []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	note := func(r *result, err error) {
		mu.Lock()
		defer mu.Unlock()
		r.total++
		if err != nil {
			r.failed++
			if len(errs) < 5 {
				errs = append(errs, err.Error())
			}
		}
	}
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			note(&httpRes, expect200(httpAddr, host, want))
			_, err := servedSerial(httpsAddr, host, want, roots)
			note(&tlsRes, err)
		}
	})
	for i := range 20 {
		if i%2 == 0 {
			rep.Stop()
		} else {
			rep.Kill()
		}
		rep = startReporter()
	}
	close(stop)
	wg.Wait()
	t.Logf("20 reporter restarts: HTTP %d requests %d failed, HTTPS %d requests %d failed", httpRes.total, httpRes.failed, tlsRes.total, tlsRes.failed)
	if httpRes.failed+tlsRes.failed > 0 || httpRes.total == 0 {
		t.Errorf("requests failed across reporter restarts: %v", errs)
	}
	b1, ok := bundle(t, e.Client, host)
	if !ok || b1.Serial != b0.Serial || !b1.ObtainedAt.Equal(b0.ObtainedAt) {
		t.Errorf("certificate re-issued across reporter restarts: serial %s -> %s", b0.Serial, b1.Serial)
	}
	if s, err := servedSerial(httpsAddr, host, want, roots); err != nil || s != b0.Serial {
		t.Errorf("served serial %q (%v), want %s", s, err, b0.Serial)
	}
}

// TestFaultHostileStoreInput writes records Portico never would: each is
// rejected alone with an error naming its key in `portico status`, no stage
// crashes, and valid routes keep serving and changing.
func TestFaultHostileStoreInput(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "hostilestore")
	// An external etcd that accepts 4 MiB requests, so a 2 MB value gets in.
	etcd := startEtcdProc(t, etcdProcBinary(t), t.TempDir(), "--max-request-bytes", strconv.Itoa(4<<20))
	p := &pipeline{dataDir: t.TempDir(), http: addr(freePort(t)), https: addr(freePort(t))}
	p.proc = start(t, nil, "run", "--etcd-endpoints", etcd.url, "--data-dir", p.dataDir,
		"--http-addr", p.http, "--https-addr", p.https, "--network", net, "--host", "e2e-"+d.RunID,
		"--label-filter", d.LabelFilter())
	good := "goodrec-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "good", Network: net, Labels: vhostLabels(good)})
	eventually(t, 30*time.Second, "valid route live", func() error { return expect200(p.http, good, d.Name("good")) })

	// A client of our own: store.Connect's refuses to send 2 MB, as it should.
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd.url}, DialTimeout: 5 * time.Second, MaxCallSendMsgSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	keys := store.NewKeys(store.DefaultPrefix)
	foreign := "foreign-" + d.RunID
	labels := `"labels": {"portico.vhost": "evil-` + d.RunID + `.test"}, "state": "running", "networks": {"` + net + `": {"ipv4": "10.9.9.9"}}`
	hostile := map[string]string{
		keys.Container(foreign, "garbage"):  `{"id": "garbage", "host": ` + strconv.Quote(foreign) + `, `,
		keys.Container(foreign, "schema"):   `{"id": 42, "host": ["x"], "labels": "portico.vhost=evil.test"}`,
		keys.Container(foreign, "big"):      `{"id": "big", "host": "` + foreign + `", "name": "` + strings.Repeat("a", 2<<20) + `"}`,
		keys.Container(foreign, "noid"):     `{"name": "noid", "host": "` + foreign + `", ` + labels + `}`,
		keys.Container(foreign, "mismatch"): `{"id": "other", "host": "` + foreign + `", ` + labels + `}`,
		keys.Containers() + foreign:         `{"id": "keyless", "host": "` + foreign + `", ` + labels + `}`,
		keys.CertBundle("garbage.test"):     `<html>not a bundle</html>`,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for k, v := range hostile {
		if _, err := cli.Put(ctx, k, v); err != nil {
			t.Fatalf("put hostile %s: %v", k, err)
		}
	}

	eventually(t, 15*time.Second, "status names every hostile key under store errors", func() error {
		st := statusJSON(t, "--etcd-endpoints", etcd.url)
		var se []string
		for _, e := range asSlice(st["store_errors"]) {
			se = append(se, fmt.Sprint(e))
		}
		for k := range hostile {
			if !slices.ContainsFunc(se, func(e string) bool {
				return strings.Contains(e, strconv.Quote(k)) || strings.Contains(e, k+" ") || strings.HasSuffix(e, k)
			}) {
				return fmt.Errorf("no store error names %s in %q", k, se)
			}
		}
		for _, r := range asSlice(st["routes"]) {
			if h := fmt.Sprint(r.(map[string]any)["Host"]); strings.HasPrefix(h, "evil") {
				return fmt.Errorf("route %s built from a hostile record", h)
			}
		}
		return nil
	})
	if code, body, err := get(p.http, "evil-"+d.RunID+".test"); err != nil || code != 404 {
		t.Errorf("hostile vhost: %d %q %v, want 404", code, body, err)
	}
	// Every stage still works: a new container goes live over HTTP and gets
	// a certificate.
	if err := expect200(p.http, good, d.Name("good")); err != nil {
		t.Error(err)
	}
	late := "lategood-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "late", Network: net, Labels: vhostLabels(late)})
	eventually(t, 15*time.Second, "new container live beside hostile records", func() error { return expect200(p.http, late, d.Name("late")) })
	eventually(t, 30*time.Second, "certs stage still issues", func() error {
		if _, ok := bundle(t, cli, late); !ok {
			return fmt.Errorf("no certificate for %s", late)
		}
		return nil
	})
}

// --- helpers ---

// vhostLabels are the labels that put a container behind host.
func vhostLabels(host string) map[string]string {
	return map[string]string{"portico.vhost": host}
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// hammer requests host through addr every 10 ms for d and counts failures.
// Paced, so that it never runs a loopback port range dry.
func hammer(addr, host, want string, d time.Duration) (total, failed int, errs []string) {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		<-tick.C
		total++
		if err := expect200(addr, host, want); err != nil {
			failed++
			if len(errs) < 5 {
				errs = append(errs, err.Error())
			}
		}
	}
	return total, failed, errs
}

// startContainer starts a container from any goroutine (t.Errorf, not Fatal).
func startContainer(t *testing.T, d *dockertest.Env, id string) {
	if err := d.TryStart(id); err != nil {
		t.Error(err)
	}
}

func readPid(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("pid file %s: %q is not a pid", file, b)
	}
	return pid, nil
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil && !zombie(pid) }

func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

// nginxMaster returns the live nginx master pid named in pidFile.
func nginxMaster(t *testing.T, pidFile string) int {
	t.Helper()
	var pid int
	eventually(t, 10*time.Second, "nginx pid file", func() error {
		var err error
		if pid, err = readPid(pidFile); err != nil {
			return err
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(cmd), "nginx") {
			return fmt.Errorf("pid %d is not nginx: %q %v", pid, cmd, err)
		}
		return nil
	})
	return pid
}

// localRoots trusts the local CA the certs stage keeps in etcd.
func localRoots(t *testing.T, cli *clientv3.Client) *x509.CertPool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	k := store.NewKeys(store.DefaultPrefix).LocalCA()
	resp, err := cli.Get(ctx, k)
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("local CA %s: %v", k, err)
	}
	var r localca.Record
	if err := store.Decode(k, resp.Kvs[0].Value, &r); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(r.CertPEM)) {
		t.Fatalf("local CA %s: no certificate", k)
	}
	return pool
}

// recordsMatchDocker checks that the reporter's records of this run's
// containers are exactly Docker's: same ids, same states.
func recordsMatchDocker(t *testing.T, d *dockertest.Env, cli *clientv3.Client, node string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := d.Client.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: d.Filter()})
	if err != nil {
		return err
	}
	want := map[string]string{}
	for _, c := range list.Items {
		want[c.ID] = string(c.State)
	}
	prefix := store.NewKeys(store.DefaultPrefix).HostContainers(node)
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		c, err := store.DecodeContainer(string(kv.Key), kv.Value)
		if err != nil {
			t.Errorf("reporter wrote a record it cannot read back: %v", err)
			continue
		}
		// The reporter copies the --label-filter keys, and only labels
		// Portico reads besides.
		if c.Labels[dockertest.RunLabel] == d.RunID {
			got[c.ID] = c.State
		}
	}
	for id, s := range want {
		if g, ok := got[id]; !ok {
			return fmt.Errorf("container %.12s (%s) has no record", id, s)
		} else if g != s {
			return fmt.Errorf("container %.12s: record says %s, docker %s", id, g, s)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			return fmt.Errorf("stale record for removed container %.12s", id)
		}
	}
	return nil
}

// etcdProc is an etcd server in its own process (internal/testenv/etcdproc).
type etcdProc struct {
	bin, dir, client, peer string
	extra                  []string
	url                    string
	cmd                    *exec.Cmd
	done                   chan struct{}
}

// etcdProcBinary builds internal/testenv/etcdproc into a temp dir.
func etcdProcBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "etcdproc")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/portico/portico/internal/testenv/etcdproc").CombinedOutput()
	if err != nil {
		t.Fatalf("build etcdproc: %v\n%s", err, out)
	}
	return bin
}

// startEtcdProc runs etcd on free loopback ports with its data in dir.
func startEtcdProc(t *testing.T, bin, dir string, extra ...string) *etcdProc {
	t.Helper()
	e := &etcdProc{bin: bin, dir: dir, client: addr(freePort(t)), peer: addr(freePort(t)), extra: extra}
	e.run(t)
	return e
}

// restart starts etcd again on the same dir and ports.
func (e *etcdProc) restart(t *testing.T) *etcdProc {
	t.Helper()
	n := &etcdProc{bin: e.bin, dir: e.dir, client: e.client, peer: e.peer, extra: e.extra}
	n.run(t)
	return n
}

func (e *etcdProc) run(t *testing.T) {
	t.Helper()
	e.cmd = exec.Command(e.bin, append([]string{"--dir", e.dir, "--client-addr", e.client, "--peer-addr", e.peer}, e.extra...)...)
	e.cmd.Stderr = os.Stderr
	out, err := e.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start etcdproc: %v", err)
	}
	e.done = make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- u
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() { e.cmd.Wait(); close(e.done) }()
	t.Cleanup(func() { e.kill(t) })
	select {
	case e.url = <-ready:
	case <-e.done:
		t.Fatalf("etcdproc on %s exited before it was ready: %s", e.client, e.cmd.ProcessState)
	case <-time.After(60 * time.Second):
		t.Fatalf("etcdproc on %s not ready after 60s", e.client)
	}
	// The port must answer before the test relies on it.
	eventually(t, 10*time.Second, "etcd port open", func() error {
		c, err := net.DialTimeout("tcp", e.client, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// kill sends SIGKILL and waits for the process to be gone.
func (e *etcdProc) kill(t *testing.T) {
	select {
	case <-e.done:
		return
	default:
	}
	e.cmd.Process.Kill()
	<-e.done
}
