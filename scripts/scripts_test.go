// Package scripts_test checks that the test command is safe to run on a
// person's machine: it kills nothing, asks before installing, and installs
// packages without starting their services.
package scripts_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// stubs makes a PATH in which nginx, named and tsig-keygen are missing and
// apt-get and sudo are stand-ins: apt-get logs its arguments and what the
// policy-rc.d said at that moment.
func stubs(t *testing.T, policy string) (path, log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "apt.log")
	aptGet := `#!/bin/sh
echo "apt-get $*" >> "` + log + `"
if [ "$1" = install ]; then
  if [ -x "` + policy + `" ]; then "` + policy + `" nginx start; echo "policy-rc.d exit $?" >> "` + log + `"; else echo "no policy-rc.d" >> "` + log + `"; fi
fi
`
	for name, body := range map[string]string{
		"apt-get": aptGet,
		"sudo":    "#!/bin/sh\nexec \"$@\"\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range accountStubs(dir, log) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// /usr/sbin (nginx, named, tsig-keygen) is left out on purpose.
	return dir + ":/usr/bin:/bin", log
}

// accountStubs are getent and useradd stand-ins: the accounts named in
// FAKE_MISSING_ACCOUNTS do not exist until the useradd stand-in "creates"
// them, which it logs ("useradd ARGS") to log; every other account exists.
func accountStubs(dir, log string) map[string]string {
	created := filepath.Join(dir, "created-accounts")
	return map[string]string{
		"getent": `#!/bin/sh
[ "$1" = passwd ] || exit 2
case " $FAKE_MISSING_ACCOUNTS " in *" $2 "*) grep -qx "$2" "` + created + `" 2>/dev/null || exit 2 ;; esac
echo "$2:x:999:999::/nonexistent:/usr/sbin/nologin"
`,
		"useradd": `#!/bin/sh
echo "useradd $*" >> "` + log + `"
for a; do last=$a; done
echo "$last" >> "` + created + `"
`,
	}
}

func runInstall(t *testing.T, path string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", "install-test-deps")
	cmd.Env = append([]string{"PATH=" + path, "HOME=" + t.TempDir()}, env...)
	cmd.Stdin = nil // not a terminal
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestInstallDeniesServiceStartsAndCleansUp(t *testing.T) {
	policy := filepath.Join(t.TempDir(), "policy-rc.d")
	path, log := stubs(t, policy)
	out, err := runInstall(t, path, "CI=true", "PORTICO_POLICY_RC_D="+policy)
	if err != nil {
		t.Fatalf("install-test-deps: %v\n%s", err, out)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatalf("apt-get never ran: %v\n%s", err, out)
	}
	got := string(b)
	if !strings.Contains(got, "install -y -qq --no-install-recommends nginx-light bind9") {
		t.Errorf("apt-get calls:\n%s\nwant an install of nginx-light and bind9", got)
	}
	if !strings.Contains(got, "policy-rc.d exit 101") {
		t.Errorf("during the install the policy-rc.d must deny starts (exit 101); apt-get saw:\n%s", got)
	}
	if _, err := os.Stat(policy); !os.IsNotExist(err) {
		t.Errorf("policy-rc.d left behind after the install: %v", err)
	}
}

// TestInstallCreatesTheWorkerAccount: run as root (as CI is), the install
// creates the account a root portico's nginx workers run as, once.
func TestInstallCreatesTheWorkerAccount(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("install-test-deps creates the account as root only: run this test as root (CI does)")
	}
	policy := filepath.Join(t.TempDir(), "policy-rc.d")
	path, log := stubs(t, policy)
	env := []string{"CI=true", "PORTICO_POLICY_RC_D=" + policy, "FAKE_MISSING_ACCOUNTS=portico-nginx"}
	for i := 0; i < 2; i++ {
		if out, err := runInstall(t, path, env...); err != nil {
			t.Fatalf("install-test-deps: %v\n%s", err, out)
		}
	}
	b, _ := os.ReadFile(log)
	const want = "useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --comment Portico's nginx workers portico-nginx\n"
	if n := strings.Count(string(b), "useradd"); n != 1 || !strings.Contains(string(b), want) {
		t.Errorf("calls:\n%s\nwant one %q", b, want)
	}
}

func TestInstallKeepsAnExistingPolicy(t *testing.T) {
	policy := filepath.Join(t.TempDir(), "policy-rc.d")
	const mine = "#!/bin/sh\n# the machine's own\nexit 0\n"
	if err := os.WriteFile(policy, []byte(mine), 0o755); err != nil {
		t.Fatal(err)
	}
	path, _ := stubs(t, policy)
	if out, err := runInstall(t, path, "CI=true", "PORTICO_POLICY_RC_D="+policy); err != nil {
		t.Fatalf("install-test-deps: %v\n%s", err, out)
	}
	b, err := os.ReadFile(policy)
	if err != nil || string(b) != mine {
		t.Errorf("the machine's policy-rc.d was changed or removed: %q, %v", b, err)
	}
}

func TestInstallAsksOutsideCI(t *testing.T) {
	policy := filepath.Join(t.TempDir(), "policy-rc.d")
	path, log := stubs(t, policy)
	out, err := runInstall(t, path, "PORTICO_POLICY_RC_D="+policy)
	if err == nil {
		t.Fatalf("install-test-deps without CI and without a terminal succeeded:\n%s", out)
	}
	if !strings.Contains(out, "nginx-light bind9") || !strings.Contains(out, "CI=1") {
		t.Errorf("the refusal should name the packages and how to go on:\n%s", out)
	}
	if _, err := os.Stat(log); !os.IsNotExist(err) {
		t.Errorf("apt-get ran without asking")
	}
}

// TestScriptsKillNothing: the test command must never kill processes it did
// not start (it once ended every nginx and named on the machine by name).
func TestScriptsKillNothing(t *testing.T) {
	kill := regexp.MustCompile(`(^|[\s;&|(])(pkill|killall|kill)\s`)
	for _, f := range []string{"test", "install-test-deps", "run", "lib/apt.sh", "../.ci/run"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			if kill.MatchString(line) {
				t.Errorf("%s:%d kills processes: %s", f, i+1, line)
			}
		}
	}
}
