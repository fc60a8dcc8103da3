package e2e

import (
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portico/portico/internal/testenv/dockertest"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// unitPath is the systemd unit shipped for the host-binary install.
const unitPath = "../packaging/systemd/portico.service"

// parseUnit returns a unit file's settings: key -> values, in order, one
// per assignment (comments and section headers dropped).
func parseUnit(text string) map[string][]string {
	m := map[string][]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		m[strings.TrimSpace(k)] = append(m[strings.TrimSpace(k)], strings.TrimSpace(v))
	}
	return m
}

// capBits are the capabilities the unit may keep (linux/capability.h).
// A capability added to the unit must be added here, with its reason in
// docs/install.md.
var capBits = map[string]uint{"CAP_CHOWN": 0, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_NET_BIND_SERVICE": 10}

func readUnit(t *testing.T) (string, map[string][]string) {
	t.Helper()
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), parseUnit(string(b))
}

// TestSystemdUnit checks what the unit promises (docs/install.md) and that
// systemd accepts it: systemd-analyze verify, and an exposure rating of at
// most 3.0 ("OK") from systemd-analyze security.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	text, u := readUnit(t)
	for key, want := range map[string]string{
		"Type":                    "simple",
		"ExecStart":               "/usr/local/bin/portico run --data-dir /var/lib/portico",
		"StateDirectory":          "portico",
		"StateDirectoryMode":      "0700",
		"Restart":                 "on-failure",
		"KillMode":                "mixed",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"MemoryDenyWriteExecute":  "", // LuaJIT (the dynamic path) writes machine code
		"LockPersonality":         "yes",
		"SystemCallFilter":        "@system-service",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
		"CapabilityBoundingSet":   "CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID CAP_CHOWN CAP_KILL",
	} {
		if got := strings.Join(u[key], " | "); got != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}

	// verify looks for ExecStart's binary: point it at the one under test.
	dir := t.TempDir()
	copyPath := filepath.Join(dir, "portico.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(text, "/usr/local/bin/portico", binary)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", copyPath).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=yes", "--no-pager", copyPath).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for portico\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 3.0 {
		t.Errorf("exposure level %.1f, want at most 3.0:\n%s", level, out)
	}
}

// TestSystemdSysusersCreatesTheWorkerAccount: the sysusers.d file shipped
// next to the unit creates the account nginx's workers run as (the name
// --nginx-user defaults to), with a group of its own, no home and no shell,
// as systemd-sysusers does at install and at boot; here into an empty root.
func TestSystemdSysusersCreatesTheWorkerAccount(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf, err := os.Open("../packaging/systemd/portico.sysusers")
	if err != nil {
		t.Fatal(err)
	}
	defer conf.Close()
	// With --root, file names are looked up under the root: give it on stdin.
	cmd := exec.Command("systemd-sysusers", "--root="+root, "-")
	cmd.Stdin = conf
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	group, _ := os.ReadFile(filepath.Join(root, "etc", "group"))
	m := regexp.MustCompile(`(?m)^` + defaultNginxUser + `:x:(\d+):(\d+):[^:]*:/nonexistent:/usr/sbin/nologin$`).FindStringSubmatch(string(passwd))
	if m == nil {
		t.Fatalf("no %s without home and shell in passwd:\n%s", defaultNginxUser, passwd)
	}
	if m[1] == "0" || !regexp.MustCompile(`(?m)^`+defaultNginxUser+`:x:`+m[2]+`:$`).Match(group) {
		t.Errorf("%s: uid %s gid %s; want a non-root uid and a group of its own, with no members:\n%s", defaultNginxUser, m[1], m[2], group)
	}
}

// TestSystemdUnitSandboxServes runs `portico run` under the unit's main
// restrictions, applied by hand because no systemd runs here: a private
// mount namespace with / read-only but the data dir and TMPDIR
// (ProtectSystem=strict, StateDirectory, PrivateTmp), no_new_privs
// (NoNewPrivileges), the unit's capability bounding set, and PR_SET_MDWE
// when the unit sets MemoryDenyWriteExecute (it does not: LuaJIT). nginx must still drop its workers to
// portico-nginx (the account portico.sysusers creates),
// reload, and serve a labelled container over HTTP and HTTPS. The
// system-call filter is not applied.
func TestSystemdUnitSandboxServes(t *testing.T) {
	t.Parallel()
	_, u := readUnit(t)
	var caps []string
	var mask uint64
	for _, c := range strings.Fields(strings.Join(u["CapabilityBoundingSet"], " ")) {
		bit, ok := capBits[c]
		if !ok {
			t.Fatalf("the unit keeps %s: add it to capBits (and say why in docs/install.md)", c)
		}
		mask |= 1 << bit
		caps = append(caps, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	hostNS, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}

	d := dockertest.New(t)
	net := d.Network(t, "unit")
	base := t.TempDir()
	data, tmp := filepath.Join(base, "data"), filepath.Join(base, "tmp")
	for _, dir := range []string{data, tmp} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	httpAddr, httpsAddr := addr(freePort(t)), addr(freePort(t))
	// The guard refuses to remount anything unless the namespace is new.
	sandbox := `set -eu
[ "$(readlink /proc/self/ns/mnt)" != "$HOST_NS" ] || { echo "not in a new mount namespace" >&2; exit 1; }
mount --bind "$DATA" "$DATA"
mount --bind "$TMPDIR" "$TMPDIR"
mount -o remount,bind,ro /
if touch /etc/.portico-unit-probe 2>/dev/null; then echo "/ is writable" >&2; exit 1; fi
exec python3 -c 'import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if os.environ["MDWE"] == "yes" and libc.prctl(65, 1, 0, 0, 0) != 0: sys.exit("PR_SET_MDWE: errno %d" % ctypes.get_errno())
os.execvp(sys.argv[1], sys.argv[1:])' setpriv --no-new-privs --bounding-set "-all,$CAPS" --inh-caps -all "$@"`
	mdwe := strings.Join(u["MemoryDenyWriteExecute"], "")
	p := porticotest.Start(t, "unshare", []string{"HOST_NS=" + hostNS, "DATA=" + data, "TMPDIR=" + tmp, "CAPS=" + strings.Join(caps, ","), "MDWE=" + mdwe},
		"--mount", "--propagation", "private", "bash", "-c", sandbox, "sandbox",
		binary, "run",
		"--data-dir", filepath.Join(data, "portico"),
		"--http-addr", httpAddr,
		"--https-addr", httpsAddr,
		"--network", net,
		"--host", "e2e-"+d.RunID,
		"--label-filter", dockertest.RunLabel+"="+d.RunID,
	)
	waitDefault404(t, httpAddr)

	host := "unit-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "unit", Network: net, Labels: map[string]string{"portico.vhost": host}})
	eventually(t, 15*time.Second, "labelled container over HTTP in the sandbox", func() error {
		return expect200(httpAddr, host, "name="+d.Name("unit"))
	})
	eventually(t, 15*time.Second, "labelled container over HTTPS in the sandbox", func() error {
		out, err := exec.Command(binary, "status", "--data-dir", filepath.Join(data, "portico"), "--local-ca-cert").CombinedOutput()
		if err != nil {
			return fmt.Errorf("status --local-ca-cert: %v: %s", err, out)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(out) {
			return fmt.Errorf("no certificate in %q", out)
		}
		code, body, _, err := getTLS(httpsAddr, host, roots)
		if err == nil && (code != 200 || !strings.Contains(body, "name="+d.Name("unit"))) {
			err = fmt.Errorf("HTTPS: %d %q", code, body)
		}
		return err
	})

	// The restrictions held: portico and its nginx master have exactly
	// the unit's capabilities and no_new_privs; the workers are
	// portico-nginx, and after the reloads only current workers are left.
	wacct := workerAccount(t)
	restricted := func() error {
		if err := checkProc(p.Pid(), mask, -1); err != nil {
			return fmt.Errorf("portico: %w", err)
		}
		// portico's children: its nginx master and the embedded etcd's
		// process (`portico etcd-child`), which holds the same restrictions.
		var masters []int
		for _, c := range children(p.Pid()) {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c))
			if strings.Contains(string(cmdline), "etcd-child") {
				if err := checkProc(c, mask, -1); err != nil {
					return fmt.Errorf("etcd child: %w", err)
				}
				continue
			}
			masters = append(masters, c)
		}
		if len(masters) != 1 {
			return fmt.Errorf("portico has children %v besides its etcd child, want one nginx master", masters)
		}
		if err := checkProc(masters[0], mask, 0); err != nil {
			return fmt.Errorf("nginx master: %w", err)
		}
		workers := children(masters[0])
		if len(workers) == 0 {
			return fmt.Errorf("nginx master %d has no workers", masters[0])
		}
		for _, w := range workers {
			if err := checkProc(w, 0, int(wacct.Uid)); err != nil {
				return fmt.Errorf("nginx worker: %w", err)
			}
			if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", w)); !strings.HasPrefix(string(cmd), "nginx: worker process\x00") && string(cmd) != "nginx: worker process" {
				return fmt.Errorf("nginx child %d is %q, want only current workers", w, cmd)
			}
		}
		return nil
	}
	eventually(t, 15*time.Second, "nginx master restricted, workers as portico-nginx, old workers gone", restricted)

	// The unit's ExecReload (SIGHUP): portico restarts in place under the
	// same restrictions (the exec keeps them) and adopts its nginx.
	from := len(p.Output())
	if err := syscall.Kill(p.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "restarted in place in the sandbox", func() error {
		if !strings.Contains(p.Output()[from:], rxAdopted) {
			return fmt.Errorf("no adoption logged yet")
		}
		return nil
	})
	eventually(t, 15*time.Second, "after the restart in place: still restricted, and serving", func() error {
		if err := restricted(); err != nil {
			return err
		}
		return expect200(httpAddr, host, "name="+d.Name("unit"))
	})
}

// children are pid's child processes, of all its threads.
func children(pid int) []int {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, file := range files {
		b, _ := os.ReadFile(file)
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// checkProc checks a process's no_new_privs, its effective capabilities
// (capEff) and, unless uid is -1, its real uid.
func checkProc(pid int, capEff uint64, uid int) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err
	}
	st := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			st[k] = strings.TrimSpace(v)
		}
	}
	if st["NoNewPrivs"] != "1" {
		return fmt.Errorf("pid %d: NoNewPrivs %q, want 1", pid, st["NoNewPrivs"])
	}
	if eff, err := strconv.ParseUint(st["CapEff"], 16, 64); err != nil || eff != capEff {
		return fmt.Errorf("pid %d: CapEff %s, want %016x", pid, st["CapEff"], capEff)
	}
	if uid >= 0 {
		if f := strings.Fields(st["Uid"]); len(f) == 0 || f[0] != strconv.Itoa(uid) {
			return fmt.Errorf("pid %d: uid %q, want %d", pid, st["Uid"], uid)
		}
	}
	return nil
}
