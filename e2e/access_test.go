package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
)

// nobodyUID is the unprivileged user the probe runs as.
const nobodyUID = 65534

// probeAttempt mirrors storeprobe's report.
type probeAttempt struct {
	Target string `json:"target"`
	Action string `json:"action"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// TestLocalUserCannotReachTheEmbeddedStore runs `portico run`, waits for a
// local CA, and then lets a probe running as nobody try every way into the
// store: every TCP port the portico process tree listens on, its unix
// sockets, and every file in the data dir. It must neither read the CA key
// nor write a container record. The probe also tries every process of the
// tree, nginx's workers first: their memory (/proc/<pid>/mem, environ,
// maps), signal 0 and SIGSTOP, all refused. The same probe run as the owner
// succeeds, so the probe is not blind (it finds the private keys in a
// worker's memory), and the owner's `portico status --data-dir` keeps
// working. A second probe runs as the workers' own account (portico-nginx)
// and is held to what docs/security.md says it reaches: the workers'
// signals, and nothing else.
func TestLocalUserCannotReachTheEmbeddedStore(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Fatal("this test switches to uid nobody: run it as root")
	}
	d := dockertest.New(t)
	net := d.Network(t, "access")
	p := startRun(t, d, net)

	if fi, err := os.Stat(p.dataDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir %s: %v %v, want mode 0700", p.dataDir, fi.Mode(), err)
	}

	host := "access-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "access", Network: net, Labels: map[string]string{"portico.vhost": host}})
	eventually(t, 20*time.Second, "the site is served", func() error {
		return expect200(p.http, host, "name="+d.Name("access"))
	})
	// Run as root, nginx's workers are an unprivileged user that cannot
	// enter the 0700 data dir: a body larger than nginx's memory buffer
	// must still reach the container (it is buffered outside the data dir).
	if code, err := postBody(p.http, host, 256<<10); err != nil || code != 200 {
		t.Errorf("POST of 256 KiB through nginx: %d %v, want 200", code, err)
	}
	cli := storeClient(t, p.dataDir)
	keys := store.NewKeys(store.DefaultPrefix)
	eventually(t, 20*time.Second, "the local CA exists", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, keys.LocalCA())
		if err == nil && len(resp.Kvs) == 0 {
			err = fmt.Errorf("no %s yet", keys.LocalCA())
		}
		return err
	})

	pid := porticoPid(t, p.dataDir)
	tree := processTree(t, pid)
	tcp, unix := listeningSockets(t, tree)
	t.Logf("portico pid %d (tree %v) listens on tcp %v, unix %v", pid, tree, tcp, unix)
	if len(tcp) == 0 {
		t.Fatal("found no TCP listener of portico: the probe would prove nothing")
	}
	sock := store.SocketPath(p.dataDir)
	if !slices.Contains(unix, sock) {
		t.Errorf("portico does not listen on %s (unix sockets: %v)", sock, unix)
	}
	var files []string
	filepath.WalkDir(p.dataDir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			files = append(files, path)
		}
		return nil
	})

	workers := nginxWorkers(tree)
	if len(workers) == 0 {
		t.Fatalf("no nginx worker in portico's tree %v: the probe would prove nothing", tree)
	}
	wacct := workerAccount(t)
	for _, w := range workers {
		if uid := procUID(t, w); uid != wacct.Uid {
			t.Errorf("nginx worker %d runs as uid %d, want %s's %d", w, uid, defaultNginxUser, wacct.Uid)
		}
	}
	probe := buildProbe(t)
	// Once the site's certificate is served, its key is in every worker:
	// root (the owner) finds it, so a refusal below is not a blind probe.
	eventually(t, 30*time.Second, "root's probe finds a private key in a worker's memory", func() error {
		for _, a := range runProbe(t, probe, nil, []string{"--pid", strconv.Itoa(workers[0])}) {
			if a.Action == "readmem" && (!a.OK || strings.Contains(a.Detail, " 0 PEM")) {
				return fmt.Errorf("%s %s: %v %s", a.Action, a.Target, a.OK, a.Detail)
			}
			if a.Action == "readmem" {
				t.Logf("root: readmem %s: %s", a.Target, a.Detail)
			}
		}
		return nil
	})

	putKey := keys.Container("e2e-"+d.RunID, "probe")
	var args []string
	args = append(args, "--key", keys.LocalCA(), "--put-key", putKey)
	for _, a := range tcp {
		args = append(args, "--endpoint", a)
	}
	for _, u := range unix {
		args = append(args, "--endpoint", "unix://"+u)
	}
	for _, f := range files {
		args = append(args, "--file", f)
	}
	for _, p := range tree {
		args = append(args, "--pid", strconv.Itoa(p))
	}

	// As nobody: nothing works.
	for _, a := range runProbe(t, probe, &syscall.Credential{Uid: nobodyUID, Gid: nobodyUID, Groups: []uint32{}}, args) {
		if a.OK {
			t.Errorf("nobody could %s %s: %s", a.Action, a.Target, a.Detail)
		} else {
			t.Logf("nobody: %s %s refused: %s", a.Action, a.Target, trim(a.Detail))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if resp, err := cli.Get(ctx, putKey); err != nil || len(resp.Kvs) != 0 {
		t.Errorf("after the probe as nobody, %s: %v %v", putKey, resp.Kvs, err)
	}

	// As the workers' own account: it may signal the workers (uid alone
	// decides that), and nothing else: not their memory (they make
	// themselves undumpable), not the store, the data dir's files and keys,
	// the control socket, or portico and nginx's master.
	isWorker := map[string]bool{}
	for _, w := range nginxWorkers(tree) {
		isWorker[fmt.Sprintf("pid %d", w)] = true
	}
	reached := map[string]int{}
	for _, a := range runProbe(t, probe, &syscall.Credential{Uid: wacct.Uid, Gid: wacct.Gid, Groups: []uint32{}}, args) {
		mayReach := isWorker[a.Target] && (a.Action == "signal0" || a.Action == "stop")
		switch {
		case a.OK && !mayReach:
			t.Errorf("the workers' account %s could %s %s: %s", defaultNginxUser, a.Action, a.Target, a.Detail)
		case a.OK:
			reached[a.Action]++
			t.Logf("%s (the workers' account): %s %s: %s", defaultNginxUser, a.Action, a.Target, a.Detail)
		case mayReach && !strings.Contains(a.Detail, "no such process"):
			t.Errorf("the workers' account %s could not %s its own worker %s: %s (docs/security.md says it can: fix the doc or this test)", defaultNginxUser, a.Action, a.Target, a.Detail)
		default:
			t.Logf("%s (the workers' account): %s %s refused: %s", defaultNginxUser, a.Action, a.Target, trim(a.Detail))
		}
	}
	if reached["signal0"] == 0 || reached["stop"] == 0 {
		t.Errorf("the workers' account signalled no worker (%v): the probe saw no worker", reached)
	}

	// As the owner, through the socket only: the probe reads and writes.
	owner := runProbe(t, probe, nil, []string{"--key", keys.LocalCA(), "--put-key", putKey, "--endpoint", "unix://" + sock})
	cli.Delete(ctx, putKey)
	for _, want := range []string{"connect", "read", "write"} {
		ok := false
		for _, a := range owner {
			if a.Action == want && a.OK && (want != "read" || !strings.Contains(a.Detail, "absent")) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("the owner's probe could not %s through %s: %+v", want, sock, owner)
		}
	}

	// The owner's `portico status --data-dir` works.
	st := statusJSON(t, "--data-dir", p.dataDir)
	if routes, _ := st["routes"].([]any); !strings.Contains(fmt.Sprint(routes), host) {
		t.Errorf("portico status --data-dir lists no route for %s: %v", host, st["routes"])
	}
}

// defaultNginxUser is the account `portico run` as root drops nginx's
// workers to (--nginx-user's default); scripts/install-test-deps creates it.
const defaultNginxUser = "portico-nginx"

// workerAccount is defaultNginxUser's uid and gid; the test fails when the
// account is missing (scripts/install-test-deps creates it).
func workerAccount(t *testing.T) struct{ Uid, Gid uint32 } {
	t.Helper()
	u, err := user.Lookup(defaultNginxUser)
	if err != nil {
		t.Fatalf("the nginx workers' account: %v (scripts/install-test-deps creates it)", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		t.Fatalf("%s: uid %q gid %q", defaultNginxUser, u.Uid, u.Gid)
	}
	return struct{ Uid, Gid uint32 }{uint32(uid), uint32(gid)}
}

// nginxWorkers are the nginx worker processes among pids.
func nginxWorkers(pids []int) []int {
	var out []int
	for _, p := range pids {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if strings.HasPrefix(string(b), "nginx: worker process") {
			out = append(out, p)
		}
	}
	return out
}

// procUID is a process's real uid.
func procUID(t *testing.T, pid int) uint32 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 32)
				return uint32(n)
			}
		}
	}
	t.Fatalf("pid %d: no Uid in its status", pid)
	return 0
}

// postBody POSTs n bytes to host through nginx at addr.
func postBody(addr, host string, n int) (int, error) {
	req, err := http.NewRequest("POST", "http://"+addr+"/upload", bytes.NewReader(make([]byte, n)))
	if err != nil {
		return 0, err
	}
	req.Host = host
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// buildProbe builds storeprobe into a directory nobody may read and run.
func buildProbe(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "portico-probe-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "storeprobe")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/portico/portico/internal/testenv/storeprobe").CombinedOutput()
	if err != nil {
		t.Fatalf("build storeprobe: %v\n%s", err, out)
	}
	return bin
}

// runProbe runs the probe as cred (nil: this user) and decodes its report.
func runProbe(t *testing.T, bin string, cred *syscall.Credential, args []string) []probeAttempt {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("storeprobe: %v\n%s", err, stderr.String())
	}
	var res []probeAttempt
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("storeprobe output %q: %v", out, err)
	}
	if len(res) == 0 {
		t.Fatal("storeprobe tried nothing")
	}
	return res
}

// porticoPid finds the `portico run` process serving dataDir.
func porticoPid(t *testing.T, dataDir string) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 1 && args[0] == binary && args[1] == "run" && strings.Contains(string(b), "\x00"+dataDir+"\x00") {
			return pid
		}
	}
	t.Fatalf("no portico run process for %s", dataDir)
	return 0
}

// processTree is pid and all its descendants.
func processTree(t *testing.T, pid int) []int {
	t.Helper()
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", out[i]))
		for _, f := range tasks {
			b, _ := os.ReadFile(f)
			for _, c := range strings.Fields(string(b)) {
				if n, err := strconv.Atoi(c); err == nil {
					out = append(out, n)
				}
			}
		}
	}
	return out
}

// listeningSockets returns the loopback-dialable addresses of every TCP
// socket the processes listen on, and the paths of their unix sockets.
func listeningSockets(t *testing.T, pids []int) (tcp, unix []string) {
	t.Helper()
	inodes := map[string]bool{}
	for _, pid := range pids {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if ino, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
				inodes[strings.TrimSuffix(ino, "]")] = true
			}
		}
	}
	seen := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		for _, fields := range procTable(t, f) {
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			a := dialable(fields[1], f == "/proc/net/tcp6")
			if !seen[a] {
				seen[a] = true
				tcp = append(tcp, a)
			}
		}
	}
	for _, fields := range procTable(t, "/proc/net/unix") {
		if len(fields) >= 8 && inodes[fields[6]] && !seen[fields[7]] {
			seen[fields[7]] = true
			unix = append(unix, fields[7])
		}
	}
	return tcp, unix
}

func procTable(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]string
	sc := bufio.NewScanner(f)
	sc.Scan()
	for sc.Scan() {
		rows = append(rows, strings.Fields(sc.Text()))
	}
	return rows
}

// dialable turns a /proc/net/tcp local address (hex IP:port) into an
// address to dial: the IP itself, or loopback for a wildcard listener.
func dialable(local string, v6 bool) string {
	ipHex, portHex, _ := strings.Cut(local, ":")
	port, _ := strconv.ParseUint(portHex, 16, 16)
	host := "127.0.0.1"
	switch {
	case v6 && ipHex == strings.Repeat("0", 32):
		host = "[::1]"
	case v6:
		host = "[::1]"
		if strings.HasPrefix(ipHex, "0000000000000000FFFF0000") {
			host = "127.0.0.1"
		}
	case !v6 && ipHex != "00000000":
		b, _ := strconv.ParseUint(ipHex, 16, 32)
		// /proc/net/tcp prints the address in host (little-endian) order.
		host = fmt.Sprintf("%d.%d.%d.%d", b&0xff, b>>8&0xff, b>>16&0xff, b>>24)
	}
	return fmt.Sprintf("%s:%d", host, port)
}

func trim(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}

// TestRunRefusesAMissingWorkerAccount: `portico run` as root, told to drop
// nginx's workers to an account that does not exist, exits before nginx
// starts, with the command that creates the account; it never falls back
// to nobody.
func TestRunRefusesAMissingWorkerAccount(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Fatal("only a root portico switches nginx's workers: run this test as root")
	}
	const missing = "portico-e2e-missing"
	if _, err := user.Lookup(missing); err == nil {
		t.Fatalf("account %s exists on this machine", missing)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, binary, "run", "--data-dir", dir, "--http-addr", addr(freePort(t)), "--https-addr", "",
		"--host", "e2e-missing-account", "--label-filter", "portico-e2e-none=1", "--nginx-user", missing)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("portico run still running after 60s:\n%s", out)
	}
	want := "--nginx-user " + missing + ": the account nginx's workers run as does not exist; create it, for it alone, with: useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin " + missing
	if err == nil || !strings.Contains(string(out), want) {
		t.Errorf("portico run: %v\n%s\nwant a failure saying %q", err, out, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "nginx", "nginx.conf")); err == nil {
		t.Errorf("nginx's config was written: nginx was to be started")
	}
}
