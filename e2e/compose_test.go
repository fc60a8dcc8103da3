package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// The compose stack (compose.yaml) and the one-service file
// (compose.single.yaml), run with docker-compose from the image the
// Dockerfile builds. No registry is reachable here: the image is built FROM
// a local debootstrapped Debian trixie (scripts/base-image).

// repoRoot is the checkout this test runs from.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "Dockerfile")); err != nil {
		t.Fatalf("no Dockerfile in %s: %v", root, err)
	}
	return root
}

// runCmd runs a command with a deadline and returns its stdout; a failure
// fails the test with its output.
func runCmd(t testing.TB, timeout time.Duration, env []string, dir string, name string, args ...string) string {
	t.Helper()
	out, err := tryCmd(timeout, env, dir, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

func tryCmd(timeout time.Duration, env []string, dir string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// porticoImage builds the image of the Dockerfile from a host-built static
// binary on the local base, tagged portico-test:<hash of binary, Dockerfile
// and base>; an existing tag is reused, so it builds once per change.
func porticoImage(t testing.TB) string {
	t.Helper()
	root := repoRoot(t)
	start := time.Now()
	base := strings.TrimSpace(runCmd(t, 10*time.Minute, nil, root, filepath.Join(root, "scripts", "base-image")))
	ctxDir := t.TempDir()
	bin := filepath.Join(ctxDir, "bin", "portico-static")
	runCmd(t, 10*time.Minute, []string{"CGO_ENABLED=0"}, root, "go", "build", "-trimpath", "-o", bin, "./cmd/portico")
	h := sha256.New()
	fmt.Fprintf(h, "base=%s\n", base)
	for _, f := range []string{bin, filepath.Join(root, "Dockerfile"), filepath.Join(root, ".dockerignore")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
		if f != bin {
			if err := os.WriteFile(filepath.Join(ctxDir, filepath.Base(f)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	tag := "portico-test:" + hex.EncodeToString(h.Sum(nil))[:16]
	if _, err := tryCmd(30*time.Second, nil, "", "docker", "image", "inspect", tag); err == nil {
		t.Logf("image %s exists (base %s)", tag, base)
		return tag
	}
	runCmd(t, 10*time.Minute, nil, ctxDir, "docker", "build", "-q", "--build-arg", "BASE="+base, "-t", tag, ".")
	size := strings.TrimSpace(runCmd(t, 30*time.Second, nil, "", "docker", "image", "inspect", "-f", "{{.Size}}", tag))
	t.Logf("built image %s FROM %s in %s; size %s bytes", tag, base, time.Since(start).Round(time.Second), size)
	return tag
}

// stack is one docker-compose project of a test.
type stack struct {
	t       testing.TB
	root    string
	project string
	file    string
	env     []string
}

// newStack prepares project <prefix><run id> of file; its containers,
// volumes and networks are removed when the test ends (compose down -v,
// then by the compose project label, whatever happened).
func newStack(t testing.TB, d *dockertest.Env, file string, env []string) *stack {
	s := &stack{t: t, root: repoRoot(t), project: "porticotest" + d.RunID, file: file, env: env}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatalf("docker-compose is needed: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := s.try(time.Minute, "logs", "--no-color", "--tail", "60")
			t.Logf("compose logs:\n%s", out)
		}
		if _, err := s.try(2*time.Minute, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			t.Errorf("compose down: %v", err)
		}
		label := "label=com.docker.compose.project=" + s.project
		if ids, _ := tryCmd(time.Minute, nil, "", "docker", "ps", "-aq", "--filter", label); strings.TrimSpace(ids) != "" {
			tryCmd(time.Minute, nil, "", "docker", append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...)
		}
		if ids, _ := tryCmd(time.Minute, nil, "", "docker", "volume", "ls", "-q", "--filter", label); strings.TrimSpace(ids) != "" {
			tryCmd(time.Minute, nil, "", "docker", append([]string{"volume", "rm", "-f"}, strings.Fields(ids)...)...)
		}
		if ids, _ := tryCmd(time.Minute, nil, "", "docker", "network", "ls", "-q", "--filter", label); strings.TrimSpace(ids) != "" {
			tryCmd(time.Minute, nil, "", "docker", append([]string{"network", "rm"}, strings.Fields(ids)...)...)
		}
	})
	return s
}

func (s *stack) args(args []string) []string {
	return append([]string{"-p", s.project, "-f", filepath.Join(s.root, s.file), "--ansi", "never"}, args...)
}

func (s *stack) try(timeout time.Duration, args ...string) (string, error) {
	return tryCmd(timeout, s.env, s.root, "docker-compose", s.args(args)...)
}

func (s *stack) run(args ...string) string {
	s.t.Helper()
	out, err := s.try(3*time.Minute, args...)
	if err != nil {
		s.t.Fatalf("docker-compose %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// id is the container id of service svc.
func (s *stack) id(svc string) string {
	s.t.Helper()
	id := strings.TrimSpace(s.run("ps", "-q", svc))
	if id == "" {
		s.t.Fatalf("service %s has no container", svc)
	}
	return id
}

// localCA fetches the local CA's root through `portico status` run inside
// service svc, on the data dir's unix socket.
func (s *stack) localCA(svc string) *x509.CertPool {
	s.t.Helper()
	var pool *x509.CertPool
	eventually(s.t, 60*time.Second, "the local CA from "+svc, func() error {
		out, err := s.try(30*time.Second, "exec", "-T", svc, "portico", "status", "--data-dir", "/var/lib/portico", "--local-ca-cert")
		if err != nil {
			return err
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(out)) {
			return fmt.Errorf("no certificate in %q", out)
		}
		return nil
	})
	return pool
}

// getH2 fetches https://host/ from addr and fails unless it is served over
// HTTP/2 (nginx >= 1.25.1's "http2 on;") with a certificate roots trust.
func getH2(addr, host, want string, roots *x509.CertPool) (*x509.Certificate, error) {
	tr := &http.Transport{
		ForceAttemptHTTP2: true,
		TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: host},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	resp, err := c.Get("https://" + host + "/")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(body.String(), want) {
		return nil, fmt.Errorf("GET https://%s/ at %s: %d %q, want 200 containing %q", host, addr, resp.StatusCode, body.String(), want)
	}
	if resp.ProtoMajor != 2 {
		return nil, fmt.Errorf("GET https://%s/ at %s: served over %s, want HTTP/2", host, addr, resp.Proto)
	}
	return resp.TLS.PeerCertificates[0], nil
}

// composeEnv is the settings both compose files read. The stack proxies
// only d's containers (PORTICO_LABEL_FILTER): the daemon is shared.
func composeEnv(t testing.TB, d *dockertest.Env, image, network string) (env []string, httpAddr, httpsAddr string) {
	httpAddr, httpsAddr = addr(freePort(t)), addr(freePort(t))
	return []string{
		"PORTICO_LABEL_FILTER=" + d.LabelFilter(),
		"PORTICO_IMAGE=" + image,
		"PORTICO_NETWORK=" + network,
		"PORTICO_HTTP_PUBLISH=" + httpAddr,
		"PORTICO_HTTPS_PUBLISH=" + httpsAddr,
		"PORTICO_REPORTER_HOST=docker-test",
	}, httpAddr, httpsAddr
}

// TestComposeStack also proves, on the same stack, that each stage logs in
// to etcd as its own user (composeStageUsers) and that a container off the
// proxy's network is a problem answered 503 at once (composeOffNetwork).
// It runs in parallel with the rest of the package: TestComposeSingle,
// sequential, builds the image first.
func TestComposeStack(t *testing.T) {
	t.Parallel()
	image := porticoImage(t)
	d := dockertest.New(t)
	network := d.Network(t, "portico")
	env, httpAddr, httpsAddr := composeEnv(t, d, image, network)
	s := newStack(t, d, "compose.yaml", env)

	host := "web-" + d.RunID + ".test"
	web := d.Run(t, dockertest.RunOptions{Name: "web", Network: network, Labels: map[string]string{"portico.vhost": host}})
	want := "name=" + d.Inspect(t, web).Name[1:]

	upAt := time.Now()
	s.run("up", "-d")
	eventually(t, 90*time.Second, "the backend through the stack over HTTP", func() error { return expect200(httpAddr, host, want) })
	t.Logf("MEASURE docker-compose up -d to first HTTP 200: %s", time.Since(upAt).Round(10*time.Millisecond))

	// nginx in the image is >= 1.25.1, so the config says "http2 on;" and
	// the TLS server speaks HTTP/2.
	if v, ok := render.VersionFromOutput(s.run("exec", "-T", "nginx", "sh", "-c", "nginx -v 2>&1")); !ok || !versionAtLeast(v, 1, 25, 1) {
		t.Errorf("nginx in the image: %q, want >= 1.25.1", v)
	}
	if n := strings.TrimSpace(s.run("exec", "-T", "nginx", "grep", "-c", "http2 on;", "/var/lib/portico/nginx/portico.conf")); n == "0" {
		t.Errorf("rendered config has no \"http2 on;\"")
	}
	roots := s.localCA("etcd")
	var serial string
	eventually(t, 60*time.Second, "the backend over HTTPS (HTTP/2) with the local CA", func() error {
		leaf, err := getH2(httpsAddr, host, want, roots)
		if err != nil {
			return err
		}
		serial = leaf.SerialNumber.String()
		return nil
	})
	t.Logf("MEASURE docker-compose up -d to first HTTPS 200: %s", time.Since(upAt).Round(10*time.Millisecond))

	// Only the reporter mounts the Docker socket; only nginx publishes ports;
	// etcd, etcd-setup and the reporter have no network; the store is a
	// unix socket in a volume only the stages mount; each stage's etcd
	// password is in a volume only it (read-only) and etcd-setup mount.
	authVols := map[string][]string{"etcd": nil, "etcd-setup": {"auth-certs", "auth-nginx", "auth-reporter"},
		"reporter": {"auth-reporter"}, "certs": {"auth-certs"}, "nginx": {"auth-nginx"}}
	for _, svc := range []string{"etcd", "etcd-setup", "reporter", "certs", "nginx"} {
		ci := d.Inspect(t, s.id(svc))
		socket := false
		for _, m := range ci.Mounts {
			if strings.HasSuffix(m.Source, "docker.sock") || strings.HasSuffix(m.Destination, "docker.sock") {
				socket = true
				if m.RW {
					t.Errorf("%s mounts the Docker socket read-write", svc)
				}
			}
		}
		if socket != (svc == "reporter") {
			t.Errorf("service %s: mounts the Docker socket = %v, want %v", svc, socket, svc == "reporter")
		}
		if published := len(ci.HostConfig.PortBindings) > 0; published != (svc == "nginx") {
			t.Errorf("service %s: publishes ports %v", svc, ci.HostConfig.PortBindings)
		}
		if none := ci.HostConfig.NetworkMode == "none"; none != (svc == "etcd" || svc == "etcd-setup" || svc == "reporter") {
			t.Errorf("service %s: network mode %q", svc, ci.HostConfig.NetworkMode)
		}
		store := false
		var auth []string
		for _, m := range ci.Mounts {
			store = store || (m.Name == s.project+"_store" && m.Destination == "/run/portico")
			if v, ok := strings.CutPrefix(m.Name, s.project+"_auth-"); ok {
				auth = append(auth, "auth-"+v)
				if m.RW != (svc == "etcd-setup") {
					t.Errorf("service %s mounts %s read-write=%v", svc, m.Name, m.RW)
				}
			}
		}
		slices.Sort(auth)
		if !slices.Equal(auth, authVols[svc]) {
			t.Errorf("service %s mounts the password volumes %v, want %v", svc, auth, authVols[svc])
		}
		if !store {
			t.Errorf("service %s does not mount the store volume at /run/portico: %+v", svc, ci.Mounts)
		}
		if caps := fmt.Sprint(ci.HostConfig.CapDrop); caps != "[ALL]" {
			t.Errorf("service %s: cap_drop %s, want [ALL]", svc, caps)
		}
		if !ci.HostConfig.ReadonlyRootfs {
			t.Errorf("service %s: root file system is writable", svc)
		}
	}
	if st := d.Inspect(t, s.id("etcd-setup")).State; st != nil {
		started, _ := time.Parse(time.RFC3339Nano, st.StartedAt)
		finished, _ := time.Parse(time.RFC3339Nano, st.FinishedAt)
		if st.ExitCode != 0 {
			t.Errorf("etcd-setup exited %d", st.ExitCode)
		}
		t.Logf("MEASURE etcd-setup, first start (users, roles, passwords, auth on): %s", finished.Sub(started).Round(10*time.Millisecond))
	}
	checkWorkersAccount(t, s, "nginx")
	// The store's socket is 0600 in a 0700 dir, and nothing but nginx
	// listens on TCP in any service.
	if out := s.run("exec", "-T", "certs", "stat", "-c", "%a %F", "/run/portico", "/run/portico/etcd.sock"); out != "700 directory\n600 socket\n" {
		t.Errorf("store socket and its dir: %q, want 700 directory, 600 socket", out)
	}
	if out := s.run("exec", "-T", "certs", "stat", "-c", "%a %F", "/run/portico-auth/password"); out != "600 regular file\n" {
		t.Errorf("the certs stage's password file: %q, want 600 regular file", out)
	}
	for _, svc := range []string{"etcd", "reporter", "certs", "nginx"} {
		for _, port := range tcpListenPorts(t, s.run("exec", "-T", svc, "cat", "/proc/net/tcp", "/proc/net/tcp6")) {
			if svc != "nginx" || (port != 80 && port != 443) {
				t.Errorf("service %s listens on TCP port %d", svc, port)
			}
		}
	}

	// A local user of the host reaches neither the store's socket nor the
	// etcd volume's files; root does (the probe is not blind).
	keys := store.NewKeys(store.DefaultPrefix)
	sockHost := filepath.Join(strings.TrimSpace(runCmd(t, 30*time.Second, nil, "", "docker", "volume", "inspect", "-f", "{{.Mountpoint}}", s.project+"_store")), "etcd.sock")
	probeArgs := []string{"--key", keys.LocalCA(), "--put-key", keys.Container("e2e-"+d.RunID, "probe"), "--endpoint", "unix://" + sockHost}
	etcdVol := s.volume("etcd")
	for _, vol := range []string{etcdVol, s.volume("auth-reporter"), s.volume("auth-certs"), s.volume("auth-nginx")} {
		filepath.WalkDir(vol, func(path string, e fs.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() {
				probeArgs = append(probeArgs, "--file", path)
			}
			return nil
		})
	}
	if len(probeArgs) < 10 {
		t.Fatalf("found almost no files in the etcd volume %s: the probe would prove little (%v)", etcdVol, probeArgs)
	}
	probe := buildProbe(t)
	refused := runProbe(t, probe, &syscall.Credential{Uid: nobodyUID, Gid: nobodyUID, Groups: []uint32{}}, probeArgs)
	for _, a := range refused {
		if a.OK {
			t.Errorf("a local user (nobody) could %s %s: %s", a.Action, a.Target, a.Detail)
		}
	}
	t.Logf("a local user (nobody): %d ways into the store, all refused", len(refused))
	// Root reaches the socket (the probe is not blind), but without an
	// etcd user the store refuses it: auth is on.
	owner := runProbe(t, probe, nil, []string{"--key", keys.LocalCA(), "--endpoint", "unix://" + sockHost})
	if !slices.ContainsFunc(owner, func(a probeAttempt) bool { return a.Action == "connect" && a.OK }) {
		t.Errorf("root's probe could not connect to %s: %+v", sockHost, owner)
	}
	if slices.ContainsFunc(owner, func(a probeAttempt) bool { return (a.Action == "read" || a.Action == "write") && a.OK }) {
		t.Errorf("root's probe, with no etcd user, read or wrote the store through %s: %+v", sockHost, owner)
	}

	composeStageUsers(t, s, sockHost, "docker-test", host)
	composeOffNetwork(t, s, d, network, httpAddr)

	check := func(after string) {
		t.Helper()
		eventually(t, 60*time.Second, "the route after "+after, func() error { return expect200(httpAddr, host, want) })
		eventually(t, 60*time.Second, "the certificate after "+after, func() error {
			leaf, err := getH2(httpsAddr, host, want, roots)
			if err != nil {
				return err
			}
			if got := leaf.SerialNumber.String(); got != serial {
				return fmt.Errorf("certificate serial %s, want %s (unchanged)", got, serial)
			}
			return nil
		})
	}
	for _, svc := range []string{"etcd", "reporter", "certs", "nginx"} {
		s.run("restart", "-t", "10", svc)
		check("restarting " + svc)
	}

	passwords := s.stagePasswords()
	s.run("down", "-t", "10")
	downAt := time.Now()
	s.run("up", "-d")
	check("down and up")
	t.Logf("MEASURE docker-compose up -d (volumes kept) to HTTP and HTTPS 200: %s", time.Since(downAt).Round(10*time.Millisecond))
	if ca := s.localCA("etcd"); !ca.Equal(roots) {
		t.Errorf("the local CA changed across down/up")
	}
	// etcd-setup ran again (a new container) and changed nothing: the same
	// passwords, no user, role or auth change.
	if again := s.stagePasswords(); !maps.Equal(again, passwords) {
		t.Errorf("the stages' passwords changed across down/up")
	}
	if out := s.run("logs", "--no-color", "etcd-setup"); strings.Contains(out, "generated") || strings.Contains(out, "added") ||
		strings.Contains(out, "revoked") || strings.Contains(out, "enabled auth") || !strings.Contains(out, "role portico-certs") {
		t.Errorf("etcd-setup after down/up did more than check:\n%s", out)
	}
	noAuthErrors(t, s)
}

// volume is the host path of the compose volume name.
func (s *stack) volume(name string) string {
	s.t.Helper()
	return strings.TrimSpace(runCmd(s.t, 30*time.Second, nil, "", "docker", "volume", "inspect", "-f", "{{.Mountpoint}}", s.project+"_"+name))
}

// stagePasswords reads each etcd password of the stack from its volume on
// the host, by user.
func (s *stack) stagePasswords() map[string]string {
	s.t.Helper()
	out := map[string]string{}
	for user, path := range map[string]string{
		"root":                         filepath.Join(s.volume("etcd"), "etcd-auth", "root"),
		store.ReaderUser:               filepath.Join(s.volume("etcd"), "etcd-auth", store.ReaderUser),
		"portico-reporter-docker-test": filepath.Join(s.volume("auth-reporter"), "password"),
		"portico-certs":                filepath.Join(s.volume("auth-certs"), "password"),
		"portico-nginx-edge":           filepath.Join(s.volume("auth-nginx"), "password"),
	} {
		b, err := os.ReadFile(path)
		if err != nil {
			s.t.Fatalf("password of %s: %v", user, err)
		}
		out[user] = strings.TrimSpace(string(b))
	}
	return out
}

// composeStageUsers checks, through the store's socket from the host, that
// each stage's etcd user may do what its stage does and no more, and that
// no stage logged a refusal while the stack served (the roles suffice).
func composeStageUsers(t *testing.T, s *stack, sockHost, reporterHost, vhost string) {
	t.Helper()
	keys := store.NewKeys(store.DefaultPrefix)
	pw := s.stagePasswords()
	ep := "unix://" + sockHost
	connect := func(user string) *clientv3.Client {
		cli, err := store.Connect(store.Config{Endpoints: []string{ep}, Username: user, Password: pw[user]})
		if err != nil {
			t.Fatalf("connect as %s through %s: %v", user, ep, err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	root := connect("root")
	eventually(t, 60*time.Second, "the certificate of "+vhost+" in the store", func() error { return exists(root, keys.CertBundle(vhost)) })
	rep, ngx, crt, rdr := connect("portico-reporter-"+reporterHost), connect("portico-nginx-edge"), connect("portico-certs"), connect(store.ReaderUser)
	anon, err := store.Connect(store.Config{Endpoints: []string{ep}})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	probe := keys.Container(reporterHost, "probe-compose")
	record := `{"id":"probe-compose","host":"` + reporterHost + `"}`
	checkRoles(t, record, []roleCase{
		{"reporter", rep, "put", probe, true},
		{"reporter", rep, "put", keys.Container("other-host", "probe"), false},
		{"reporter", rep, "get", keys.CertBundle(vhost), false},
		{"reporter", rep, "get", keys.LocalCA(), false},
		{"reporter", rep, "put", keys.CertBundle(vhost), false},
		{"reporter", rep, "get", keys.NginxStatus("edge"), false},
		{"nginx", ngx, "get", keys.CertBundle(vhost), true},
		{"nginx", ngx, "get", keys.NginxStatus("edge"), true},
		{"nginx", ngx, "put", probe, false},
		{"nginx", ngx, "put", keys.CertBundle(vhost), false},
		{"nginx", ngx, "get", keys.LocalCA(), false},
		{"nginx", ngx, "put", keys.NginxStatus("other"), false},
		{"certs", crt, "get", keys.LocalCA(), true},
		{"certs", crt, "put", probe, false},
		{"certs", crt, "put", keys.NginxStatus("edge"), false},
		{"reader", rdr, "get", keys.LocalCA(), true},
		{"reader", rdr, "put", probe, false},
		{"no user", anon, "get", keys.Containers(), false},
		{"no user", anon, "put", probe, false},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := root.Delete(ctx, probe); err != nil {
		t.Errorf("delete %s: %v", probe, err)
	}
	noAuthErrors(t, s)
}

// noAuthErrors fails if a service logged a refusal of the store.
func noAuthErrors(t *testing.T, s *stack) {
	t.Helper()
	out := s.run("logs", "--no-color")
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "permission denied") || strings.Contains(line, "authentication failed") || strings.Contains(line, "user name is empty") {
			t.Errorf("a stage was refused by the store: %s", line)
		}
	}
}

// composeOffNetwork runs a labelled container on a network the nginx
// stage is not on: its vhost answers 503 at once (no upstream, not a 5 s
// connect timeout), `portico status` names the container and the network
// to join, and the command it gives makes the site served.
func composeOffNetwork(t *testing.T, s *stack, d *dockertest.Env, proxyNet, httpAddr string) {
	t.Helper()
	other := d.Network(t, "elsewhere")
	vhost := "off-" + d.RunID + ".test"
	id := d.Run(t, dockertest.RunOptions{Name: "off", Network: other, Labels: map[string]string{"portico.vhost": vhost}})
	name := d.Inspect(t, id).Name[1:]

	var cmd string
	eventually(t, 60*time.Second, "portico status naming "+name+" and the network to join", func() error {
		out, _ := s.try(30*time.Second, "exec", "-T", "etcd", "portico", "status", "--data-dir", "/var/lib/portico")
		want := "docker network connect " + proxyNet + " " + name
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, want) && strings.Contains(line, fmt.Sprintf("not on the proxy's network %q", proxyNet)) {
				cmd = want
				return nil
			}
		}
		return fmt.Errorf("status does not say %q:\n%s", want, out)
	})
	eventually(t, 30*time.Second, vhost+" answered 503 (a route with no upstream)", func() error {
		code, _, err := get(httpAddr, vhost)
		if err == nil && code != 503 {
			err = fmt.Errorf("HTTP %d, want 503", code)
		}
		return err
	})
	for range 3 {
		start := time.Now()
		code, _, err := porticotest.GetWithin(httpAddr, vhost, 10*time.Second)
		took := time.Since(start)
		if err != nil || code != 503 || took > 2*time.Second {
			t.Errorf("GET %s: HTTP %d %v in %s, want 503 within 2 s (not the 5 s connect timeout)", vhost, code, err, took.Round(time.Millisecond))
		}
		t.Logf("MEASURE off-network vhost answered %d in %s", code, took.Round(time.Millisecond))
	}

	// What status says to do, done: the site is served.
	runCmd(t, time.Minute, nil, "", "docker", strings.Fields(cmd)[1:]...)
	eventually(t, 30*time.Second, vhost+" served after "+cmd, func() error { return expect200(httpAddr, vhost, "name="+name) })
	eventually(t, 30*time.Second, "the problem gone from portico status", func() error {
		out, _ := s.try(30*time.Second, "exec", "-T", "etcd", "portico", "status", "--data-dir", "/var/lib/portico")
		if strings.Contains(out, "docker network connect "+proxyNet+" "+name) {
			return fmt.Errorf("status still says to join:\n%s", out)
		}
		return nil
	})
}

func TestComposeSingle(t *testing.T) {
	image := porticoImage(t)
	d := dockertest.New(t)
	network := d.Network(t, "portico")
	env, httpAddr, httpsAddr := composeEnv(t, d, image, network)
	s := newStack(t, d, "compose.single.yaml", env)

	host := "single-" + d.RunID + ".test"
	web := d.Run(t, dockertest.RunOptions{Name: "web", Network: network, Labels: map[string]string{"portico.vhost": host}})
	want := "name=" + d.Inspect(t, web).Name[1:]

	upAt := time.Now()
	s.run("up", "-d")
	eventually(t, 90*time.Second, "the backend through portico run over HTTP", func() error { return expect200(httpAddr, host, want) })
	t.Logf("MEASURE single: docker-compose up -d to first HTTP 200: %s", time.Since(upAt).Round(10*time.Millisecond))
	roots := s.localCA("portico")
	eventually(t, 60*time.Second, "the backend over HTTPS (HTTP/2) with the local CA", func() error {
		_, err := getH2(httpsAddr, host, want, roots)
		return err
	})

	checkWorkersAccount(t, s, "portico")
	composeRestartInPlace(t, s, httpAddr, host, want)

	// portico run keeps its store on the unix socket: nothing in the
	// container listens on TCP but nginx (80, 443).
	for _, port := range tcpListenPorts(t, s.run("exec", "-T", "portico", "cat", "/proc/net/tcp", "/proc/net/tcp6")) {
		if port != 80 && port != 443 {
			t.Errorf("portico run in the container listens on TCP port %d", port)
		}
	}
}

// composeRestartInPlace sends SIGHUP to the portico service's container
// (`docker-compose kill -s HUP`), as an operator reloads it: its init
// (tini, init: true) forwards it, and portico restarts in place (same
// container, same nginx master) with not one request failed.
func composeRestartInPlace(t *testing.T, s *stack, httpAddr, host, want string) {
	t.Helper()
	pidFile := "/var/lib/portico/nginx/logs/nginx.pid"
	master := strings.TrimSpace(s.run("exec", "-T", "portico", "cat", pidFile))
	started := func() string {
		return strings.TrimSpace(runCmd(t, 30*time.Second, nil, "", "docker", "inspect", "-f", "{{.RestartCount}} {{.State.StartedAt}}", s.id("portico")))
	}
	before := started()
	l := startLoad(httpAddr, host, want)
	s.run("kill", "-s", "HUP", "portico")
	eventually(t, 60*time.Second, "portico restarted in place in its container", func() error {
		out, err := s.try(time.Minute, "logs", "--no-color", "portico")
		if err != nil {
			return err
		}
		if !strings.Contains(out, rxAdopted) {
			return fmt.Errorf("no adoption logged yet")
		}
		return nil
	})
	total, refused, wrong, errs := l.end()
	t.Logf("docker-compose kill -s HUP portico: %d requests, %d refused, %d wrong answers %v", total, refused, wrong, errs)
	if refused+wrong > 0 || total == 0 {
		t.Errorf("%d refused and %d wrong of %d requests across the restart in place", refused, wrong, total)
	}
	if now := strings.TrimSpace(s.run("exec", "-T", "portico", "cat", pidFile)); now != master {
		t.Errorf("nginx master %s after SIGHUP, want the same %s", now, master)
	}
	if after := started(); after != before {
		t.Errorf("the container restarted (restart count, start time %s -> %s); want the process restarted in place", before, after)
	}
}

// imageNginxUID is the uid of portico-nginx in the image (the Dockerfile's
// NGINX_UID).
const imageNginxUID = "61080"

// checkWorkersAccount checks that the nginx workers of service svc run as
// the image's portico-nginx account, which nothing else in it runs as.
func checkWorkersAccount(t testing.TB, s *stack, svc string) {
	t.Helper()
	if pw := s.run("exec", "-T", svc, "getent", "passwd", "portico-nginx"); !strings.HasPrefix(pw, "portico-nginx:x:"+imageNginxUID+":"+imageNginxUID+":") {
		t.Errorf("service %s: portico-nginx is %q, want uid and gid %s", svc, pw, imageNginxUID)
	}
	out := s.run("exec", "-T", svc, "sh", "-c", `for p in /proc/[0-9]*; do
  c=$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null) || continue
  printf '%s\t%s\n' "$(awk '/^Uid:/{print $2}' "$p/status")" "$c"
done`)
	workers := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		uid, cmd, _ := strings.Cut(line, "\t")
		isWorker := strings.HasPrefix(cmd, "nginx: worker process")
		if isWorker {
			workers++
		}
		if isWorker != (uid == imageNginxUID) {
			t.Errorf("service %s: uid %s runs %q; want the nginx workers, and only them, as uid %s", svc, uid, cmd, imageNginxUID)
		}
	}
	if workers == 0 {
		t.Errorf("service %s runs no nginx worker:\n%s", svc, out)
	}
}

// tcpListenPorts parses /proc/net/tcp{,6} text into the ports in LISTEN
// state, leaving out Docker's DNS resolver of user-defined networks
// (127.0.0.11).
func tcpListenPorts(t testing.TB, text string) []uint64 {
	t.Helper()
	var ports []uint64
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "0A" { // 0A: LISTEN
			continue
		}
		ipHex, portHex, _ := strings.Cut(f[1], ":")
		if ipHex == "0B00007F" { // 127.0.0.11, Docker's embedded DNS
			continue
		}
		port, err := strconv.ParseUint(portHex, 16, 16)
		if err != nil {
			t.Fatalf("parse /proc/net/tcp line %q: %v", line, err)
		}
		ports = append(ports, port)
	}
	return ports
}

// versionAtLeast reports whether "1.26.3" is at least major.minor.patch.
func versionAtLeast(v string, want ...int) bool {
	parts := strings.Split(v, ".")
	for i, w := range want {
		n := 0
		if i < len(parts) {
			n, _ = strconv.Atoi(parts[i])
		}
		if n != w {
			return n > w
		}
	}
	return true
}
