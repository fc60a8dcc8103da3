package scripts_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// runEnv is a copy of scripts/run (and scripts/lib) in a temporary checkout,
// with stand-ins on PATH: apt-get (logs its arguments and what policy-rc.d
// said; "installs" nginx), sudo (logs, then runs the command), go (logs, and
// "builds" a portico that logs its arguments), id (answers FAKE_UID when
// set) and docker (answers).
type runEnv struct {
	repo, stubs, policy string
	aptLog, sudoLog     string
	goLog, porticoLog   string
	home                string
	// rootData stands for /var/lib/portico, the data dir as root, so that
	// no test writes there (PORTICO_RUN_ROOT_DATA_DIR).
	rootData string
}

func newRunEnv(t *testing.T, withSudo, withNginx bool) *runEnv {
	t.Helper()
	tmp := t.TempDir()
	e := &runEnv{
		repo:       filepath.Join(tmp, "checkout"),
		stubs:      filepath.Join(tmp, "stubs"),
		policy:     filepath.Join(tmp, "policy-rc.d"),
		aptLog:     filepath.Join(tmp, "apt.log"),
		sudoLog:    filepath.Join(tmp, "sudo.log"),
		goLog:      filepath.Join(tmp, "go.log"),
		porticoLog: filepath.Join(tmp, "portico.log"),
		home:       filepath.Join(tmp, "home"),
		rootData:   filepath.Join(tmp, "var", "lib", "portico"),
	}
	for _, d := range []string{filepath.Join(e.repo, "scripts", "lib"), e.stubs, e.home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"run", "lib/apt.sh"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.repo, "scripts", f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	nginx := filepath.Join(e.stubs, "nginx")
	stubs := map[string]string{
		"apt-get": `#!/bin/sh
echo "apt-get $*" >> "` + e.aptLog + `"
if [ "$1" = install ]; then
  if [ -x "` + e.policy + `" ]; then "` + e.policy + `" nginx start; echo "policy-rc.d exit $?" >> "` + e.aptLog + `"; else echo "no policy-rc.d" >> "` + e.aptLog + `"; fi
  printf '#!/bin/sh\nexit 0\n' > "` + nginx + `"; chmod +x "` + nginx + `"
fi
`,
		"go": `#!/bin/sh
echo "go $* (in $PWD)" >> "` + e.goLog + `"
env | grep '^GIT_CONFIG' | sort > "` + e.goLog + `.git"
[ "$1" = build ] && [ "$2" = -o ] || exit 2
mkdir -p "$(dirname "$3")"
printf '#!/bin/sh\nprintf "%%s\\n" "$@" > "` + e.porticoLog + `"\n' > "$3"
chmod +x "$3"
`,
		"id":     "#!/bin/sh\nif [ \"$1\" = -u ] && [ -n \"$FAKE_UID\" ]; then echo \"$FAKE_UID\"; else exec /usr/bin/id \"$@\"; fi\n",
		"docker": "#!/bin/sh\nexit 0\n",
	}
	for name, body := range accountStubs(e.stubs, e.aptLog) {
		stubs[name] = body
	}
	if withSudo {
		stubs["sudo"] = "#!/bin/sh\necho \"sudo $*\" >> \"" + e.sudoLog + "\"\nexec \"$@\"\n"
	}
	if withNginx {
		stubs["nginx"] = "#!/bin/sh\nexit 0\n"
	}
	for name, body := range stubs {
		if err := os.WriteFile(filepath.Join(e.stubs, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// run runs scripts/run with no terminal on stdin. /usr/sbin (the real
// nginx) and /usr/local/go/bin are not searched.
func (e *runEnv) run(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(e.repo, "scripts", "run")}, args...)...)
	cmd.Dir = e.home
	cmd.Env = append([]string{
		"PATH=" + e.stubs + ":/usr/bin:/bin",
		"PORTICO_SBIN_PATH=",
		"HOME=" + e.home,
		"PORTICO_POLICY_RC_D=" + e.policy,
		"PORTICO_RUN_ROOT_DATA_DIR=" + e.rootData,
	}, env...)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func readOr(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// porticoArgs is the argv the built portico was exec'd with, or nil.
func (e *runEnv) porticoArgs(t *testing.T) []string {
	t.Helper()
	s := readOr(t, e.porticoLog)
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func wantArgs(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
		t.Errorf("portico was started with\n  %q\nwant\n  %q", got, want)
	}
}

func TestRunAsksWithoutATerminal(t *testing.T) {
	e := newRunEnv(t, true, false)
	out, err := e.run(t, nil)
	if err == nil {
		t.Fatalf("scripts/run without --yes, CI or a terminal went on:\n%s", out)
	}
	if !strings.Contains(out, "nginx-light") || !strings.Contains(out, "--yes") {
		t.Errorf("the refusal should name nginx-light and how to go on (--yes):\n%s", out)
	}
	if log := readOr(t, e.aptLog); log != "" {
		t.Errorf("apt-get ran without asking:\n%s", log)
	}
	if e.porticoArgs(t) != nil {
		t.Errorf("portico started although nginx is missing")
	}
}

func TestRunAsRootInstallsBuildsAndStarts(t *testing.T) {
	e := newRunEnv(t, true, false)
	out, err := e.run(t, []string{"FAKE_UID=0", "FAKE_MISSING_ACCOUNTS=portico-nginx"}, "--yes", "--log-level", "debug", "--acme-email=ops@example.test")
	if err != nil {
		t.Fatalf("scripts/run: %v\n%s", err, out)
	}
	apt := readOr(t, e.aptLog)
	if !strings.Contains(apt, "useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --comment Portico's nginx workers portico-nginx\n") {
		t.Errorf("calls:\n%s\nwant the account portico-nginx created", apt)
	}
	if !strings.Contains(apt, "install -y -qq --no-install-recommends nginx-light libnginx-mod-http-lua lua-resty-core\n") {
		t.Errorf("apt-get calls:\n%s\nwant an install of nginx-light", apt)
	}
	if !strings.Contains(apt, "policy-rc.d exit 101") {
		t.Errorf("during the install the policy-rc.d must deny starts (exit 101); apt-get saw:\n%s", apt)
	}
	if _, err := os.Stat(e.policy); !os.IsNotExist(err) {
		t.Errorf("policy-rc.d left behind after the install: %v", err)
	}
	if s := readOr(t, e.sudoLog); s != "" {
		t.Errorf("sudo used as root:\n%s", s)
	}
	bin := filepath.Join(e.repo, "bin", "portico")
	if g := readOr(t, e.goLog); g != "go build -o "+bin+" -buildvcs=true ./cmd/portico (in "+e.repo+")\n" {
		t.Errorf("go calls:\n%s\nwant one go build -o %s -buildvcs=true ./cmd/portico in the checkout (the VCS stamp asked for, whatever GOFLAGS says)", g, bin)
	}
	wantArgs(t, e.porticoArgs(t), "run", "--data-dir", e.rootData, "--http-addr", ":80", "--https-addr", ":443",
		"--ui-addr", "127.0.0.1:8099", "--ui-token-file", filepath.Join(e.rootData, "ui-token"), "--log-level", "debug", "--acme-email=ops@example.test")
	for _, want := range []string{
		bin + " status --data-dir " + e.rootData + "\n",
		"http :80; https :443",
		bin + " status --data-dir " + e.rootData + " --local-ca-cert > portico-ca.pem",
		"update-ca-certificates",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func unprivilegedLowPorts() bool {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && n <= 80
}

func TestRunAsUserUsesSudoAndItsStateDir(t *testing.T) {
	e := newRunEnv(t, true, false)
	state := filepath.Join(e.home, "state")
	out, err := e.run(t, []string{"FAKE_UID=1000", "CI=true", "XDG_STATE_HOME=" + state})
	if err != nil {
		t.Fatalf("scripts/run: %v\n%s", err, out)
	}
	if s := readOr(t, e.sudoLog); !strings.Contains(s, "sudo apt-get install -y -qq --no-install-recommends nginx-light libnginx-mod-http-lua lua-resty-core") {
		t.Errorf("as a user apt-get must run through sudo; sudo saw:\n%s", s)
	}
	if _, err := os.Stat(e.policy); !os.IsNotExist(err) {
		t.Errorf("policy-rc.d left behind after the install: %v", err)
	}
	http, https := ":8080", ":8443"
	if unprivilegedLowPorts() {
		http, https = ":80", ":443"
	}
	dir := filepath.Join(state, "portico")
	wantArgs(t, e.porticoArgs(t), "run", "--data-dir", dir, "--http-addr", http, "--https-addr", https, "--ui-addr", "127.0.0.1:8099", "--ui-token-file", filepath.Join(dir, "ui-token"))
	if !strings.Contains(out, "status --data-dir "+dir) {
		t.Errorf("output lacks the status command for %s:\n%s", dir, out)
	}
	if !strings.Contains(out, "\n  web page:  http://127.0.0.1:8099/\n") {
		t.Errorf("output should name the web page's URL once:\n%s", out)
	}

	// Without XDG_STATE_HOME (or with a relative one): ~/.local/state.
	if out, err := e.run(t, []string{"FAKE_UID=1000", "XDG_STATE_HOME=relative"}); err != nil {
		t.Fatalf("scripts/run: %v\n%s", err, out)
	}
	dir = filepath.Join(e.home, ".local", "state", "portico")
	wantArgs(t, e.porticoArgs(t), "run", "--data-dir", dir, "--http-addr", http, "--https-addr", https, "--ui-addr", "127.0.0.1:8099", "--ui-token-file", filepath.Join(dir, "ui-token"))
}

// TestRunWorkerAccount: as root, the account nginx's workers run as is
// created only when missing, after asking, under --nginx-user's name when
// given; as another user, or with an external nginx, never.
func TestRunWorkerAccount(t *testing.T) {
	const create = "useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --comment Portico's nginx workers "
	for _, tt := range []struct {
		name    string
		env     []string
		args    []string
		fails   bool   // scripts/run refuses (no terminal to ask on)
		useradd string // the account created; "" means none
	}{
		{name: "root, account there", env: []string{"FAKE_UID=0"}},
		{name: "root, missing, no terminal", env: []string{"FAKE_UID=0", "FAKE_MISSING_ACCOUNTS=portico-nginx"}, fails: true},
		{name: "root, missing, CI", env: []string{"FAKE_UID=0", "CI=1", "FAKE_MISSING_ACCOUNTS=portico-nginx"}, useradd: "portico-nginx"},
		{name: "root, --nginx-user", env: []string{"FAKE_UID=0", "FAKE_MISSING_ACCOUNTS=edge"}, args: []string{"--yes", "--nginx-user", "edge"}, useradd: "edge"},
		{name: "root, PORTICO_NGINX_USER", env: []string{"FAKE_UID=0", "FAKE_MISSING_ACCOUNTS=edge", "PORTICO_NGINX_USER=edge"}, args: []string{"--yes"}, useradd: "edge"},
		{name: "root, external nginx", env: []string{"FAKE_UID=0", "FAKE_MISSING_ACCOUNTS=portico-nginx"}, args: []string{"--nginx-pid-file", "/run/nginx.pid"}},
		{name: "user", env: []string{"FAKE_UID=1000", "FAKE_MISSING_ACCOUNTS=portico-nginx"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newRunEnv(t, true, true)
			out, err := e.run(t, tt.env, tt.args...)
			log := readOr(t, e.aptLog)
			if tt.fails {
				if err == nil || e.porticoArgs(t) != nil {
					t.Fatalf("scripts/run went on without the account:\n%s", out)
				}
				if !strings.Contains(out, create+"portico-nginx") || !strings.Contains(out, "--yes") {
					t.Errorf("the refusal should give the command that creates the account, and --yes:\n%s", out)
				}
				if strings.Contains(log, "useradd") {
					t.Errorf("useradd ran without asking:\n%s", log)
				}
				return
			}
			if err != nil {
				t.Fatalf("scripts/run: %v\n%s", err, out)
			}
			want := ""
			if tt.useradd != "" {
				want = create + tt.useradd + "\n"
			}
			var got string
			for _, l := range strings.SplitAfter(log, "\n") {
				if strings.HasPrefix(l, "useradd ") {
					got += l
				}
			}
			if got != want {
				t.Errorf("useradd calls %q, want %q", got, want)
			}
		})
	}
}

func TestRunAsUserWithoutSudo(t *testing.T) {
	e := newRunEnv(t, false, false)
	out, err := e.run(t, []string{"FAKE_UID=1000", "CI=true"})
	if err == nil {
		t.Fatalf("scripts/run as a user without sudo went on:\n%s", out)
	}
	if !strings.Contains(out, "sudo is not installed") || !strings.Contains(out, "as root") {
		t.Errorf("the error should say sudo is missing and to run as root:\n%s", out)
	}
	if a := readOr(t, e.aptLog); a != "" {
		t.Errorf("apt-get ran:\n%s", a)
	}
	if e.porticoArgs(t) != nil {
		t.Errorf("portico started although nginx is missing")
	}
}

func TestRunKeepsGivenSettings(t *testing.T) {
	e := newRunEnv(t, true, true)
	// Flags given: no default is added, nothing is installed.
	out, err := e.run(t, []string{"FAKE_UID=0"}, "--data-dir", "/srv/p", "--http-addr=127.0.0.1:8081", "--https-addr", "", "--ui-addr", "")
	if err != nil {
		t.Fatalf("scripts/run: %v\n%s", err, out)
	}
	wantArgs(t, e.porticoArgs(t), "run", "--data-dir", "/srv/p", "--http-addr=127.0.0.1:8081", "--https-addr", "", "--ui-addr", "")
	if a := readOr(t, e.aptLog); a != "" {
		t.Errorf("apt-get ran although nginx is there:\n%s", a)
	}
	if !strings.Contains(out, "status --data-dir /srv/p\n") || !strings.Contains(out, "http 127.0.0.1:8081; https none") ||
		!strings.Contains(out, "web page:  off") {
		t.Errorf("output should name the given data dir and addresses:\n%s", out)
	}
	if strings.Contains(out, "local-ca-cert") {
		t.Errorf("with TLS off there is no local CA step:\n%s", out)
	}

	// PORTICO_* variables given: portico reads them, so no flag is added
	// (and with a token given, none is made).
	out, err = e.run(t, []string{"FAKE_UID=0", "PORTICO_DATA_DIR=/srv/q", "PORTICO_HTTP_ADDR=127.0.0.1:8082", "PORTICO_HTTPS_ADDR=127.0.0.1:8443", "PORTICO_UI_ADDR=127.0.0.1:8098",
		"PORTICO_UI_TOKEN_FILE=/srv/q-token"}, "--log-format", "json")
	if err != nil {
		t.Fatalf("scripts/run: %v\n%s", err, out)
	}
	wantArgs(t, e.porticoArgs(t), "run", "--log-format", "json")
	if !strings.Contains(out, "status --data-dir /srv/q\n") || !strings.Contains(out, "http 127.0.0.1:8082; https 127.0.0.1:8443") ||
		!strings.Contains(out, "web page:  http://127.0.0.1:8098/\n") {
		t.Errorf("output should name the data dir and addresses from the environment:\n%s", out)
	}
}

// TestRunBuildsAnotherUsersCheckout: root running a user's clone must not
// trip over git's "dubious ownership" check when go build asks git for the
// commit; the checkout is trusted for that build alone.
func TestRunBuildsAnotherUsersCheckout(t *testing.T) {
	e := newRunEnv(t, true, true)
	if err := os.Mkdir(filepath.Join(e.repo, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := e.run(t, []string{"FAKE_UID=0"}); err != nil {
		t.Fatalf("scripts/run: %v\n%s", err, out)
	}
	if g := readOr(t, e.goLog+".git"); g != "" {
		t.Errorf("own checkout: go build got git config %q, want none", g)
	}
	if err := os.Chown(e.repo, 65534, -1); err != nil {
		t.Fatal(err)
	}
	if out, err := e.run(t, []string{"FAKE_UID=0", "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=user.name", "GIT_CONFIG_VALUE_0=x"}); err != nil {
		t.Fatalf("scripts/run: %v\n%s", err, out)
	}
	want := "GIT_CONFIG_COUNT=2\nGIT_CONFIG_KEY_0=user.name\nGIT_CONFIG_KEY_1=safe.directory\nGIT_CONFIG_VALUE_0=x\nGIT_CONFIG_VALUE_1=" + e.repo + "\n"
	if g := readOr(t, e.goLog+".git"); g != want {
		t.Errorf("another user's checkout: go build got git config\n%s\nwant\n%s", g, want)
	}
}

func TestRunRefusesADataDirTooLongForItsSocket(t *testing.T) {
	e := newRunEnv(t, true, true)
	long := "/" + strings.Repeat("d", 100)
	out, err := e.run(t, []string{"FAKE_UID=0"}, "--data-dir", long)
	if err == nil {
		t.Fatalf("scripts/run accepted a data dir whose socket path is over 107 bytes:\n%s", out)
	}
	if !strings.Contains(out, long) || !strings.Contains(out, "107") {
		t.Errorf("the error should name the data dir and the limit:\n%s", out)
	}
	if e.porticoArgs(t) != nil {
		t.Errorf("portico started")
	}
}

// TestRunMakesTheUITokenOnceAndKeepsIt: with the page on (the default), the
// token file is made in the data dir, 0600, random, and passed with
// --ui-token-file; the next run keeps it; a token file others may read is
// refused; a given token (flag or variable) makes none.
func TestRunMakesTheUITokenOnceAndKeepsIt(t *testing.T) {
	e := newRunEnv(t, true, true)
	dir := filepath.Join(t.TempDir(), "data")
	file := filepath.Join(dir, "ui-token")
	out, err := e.run(t, nil, "--data-dir", dir)
	if err != nil {
		t.Fatalf("scripts/run: %v\n%s", err, out)
	}
	if got := strings.Join(e.porticoArgs(t), " "); !strings.Contains(got, " --ui-addr 127.0.0.1:8099 --ui-token-file "+file+" ") {
		t.Errorf("portico was started with %q, want --ui-addr 127.0.0.1:8099 --ui-token-file %s", got, file)
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatalf("no token file: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", st.Mode().Perm())
	}
	if d, err := os.Stat(dir); err != nil || d.Mode().Perm() != 0o700 {
		t.Errorf("data dir made by scripts/run: %v, %v; want mode 0700", d.Mode(), err)
	}
	first := strings.TrimSpace(readOr(t, file))
	if len(first) != 64 || strings.Trim(first, "0123456789abcdef") != "" {
		t.Errorf("token %q: want 64 hex digits (32 random bytes)", first)
	}
	if !strings.Contains(out, file) || !strings.Contains(out, "?token=$(cat "+file+")") {
		t.Errorf("output should say where the token is and how to open the page with it:\n%s", out)
	}
	if strings.Contains(out, first) {
		t.Errorf("output shows the token itself:\n%s", out)
	}

	// Kept across runs.
	if out, err := e.run(t, nil, "--data-dir", dir); err != nil {
		t.Fatalf("scripts/run again: %v\n%s", err, out)
	}
	if again := strings.TrimSpace(readOr(t, file)); again != first {
		t.Errorf("token changed on the second run: %q, then %q", first, again)
	}

	// Another data dir gets another token.
	other := filepath.Join(t.TempDir(), "data")
	if out, err := e.run(t, nil, "--data-dir", other); err != nil {
		t.Fatalf("scripts/run: %v\n%s", err, out)
	}
	if tok := strings.TrimSpace(readOr(t, filepath.Join(other, "ui-token"))); tok == first || len(tok) != 64 {
		t.Errorf("second data dir's token %q (first %q): want another random one", tok, first)
	}

	// Readable by others: refused, naming the file.
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(e.porticoLog)
	out, err = e.run(t, nil, "--data-dir", dir)
	if err == nil || !strings.Contains(out, file) || !strings.Contains(out, "chmod 600") {
		t.Errorf("a token file of mode 0644: err %v, output:\n%s\nwant a refusal naming it and chmod 600", err, out)
	}
	if e.porticoArgs(t) != nil {
		t.Errorf("portico started with a token file others may read")
	}

	// A token given: none is made or passed.
	for _, given := range [][]string{
		{"--ui-token-file", "/etc/mine"},
		{"--ui-token-file=/etc/mine"},
		{"--ui-token", "x"},
	} {
		fresh := filepath.Join(t.TempDir(), "data")
		args := append([]string{"--data-dir", fresh}, given...)
		if out, err := e.run(t, nil, args...); err != nil {
			t.Fatalf("scripts/run %q: %v\n%s", args, err, out)
		}
		wantArgs(t, e.porticoArgs(t), append([]string{"run", "--http-addr", e.httpDefault(), "--https-addr", e.httpsDefault(), "--ui-addr", "127.0.0.1:8099"}, args...)...)
		if _, err := os.Stat(filepath.Join(fresh, "ui-token")); !os.IsNotExist(err) {
			t.Errorf("%q: a token file was made: %v", given, err)
		}
	}
	fresh := filepath.Join(t.TempDir(), "data")
	if out, err := e.run(t, []string{"PORTICO_UI_TOKEN=x"}, "--data-dir", fresh); err != nil {
		t.Fatalf("scripts/run: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(fresh, "ui-token")); !os.IsNotExist(err) {
		t.Errorf("PORTICO_UI_TOKEN given: a token file was made: %v", err)
	}
	// The page off: no token.
	if out, err := e.run(t, nil, "--data-dir", fresh, "--ui-addr", ""); err != nil {
		t.Fatalf("scripts/run: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(fresh, "ui-token")); !os.IsNotExist(err) {
		t.Errorf("page off: a token file was made: %v", err)
	}
}

// httpDefault and httpsDefault are the listen addresses scripts/run picks
// for the user running the tests.
func (e *runEnv) httpDefault() string {
	if os.Getuid() == 0 || unprivilegedLowPorts() {
		return ":80"
	}
	return ":8080"
}

func (e *runEnv) httpsDefault() string {
	if os.Getuid() == 0 || unprivilegedLowPorts() {
		return ":443"
	}
	return ":8443"
}
