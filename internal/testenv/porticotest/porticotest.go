// Package porticotest runs the real portico binary for end-to-end tests and
// benchmarks: build once, start with flags, talk HTTP to its nginx, scrape
// its metrics, read its status.
package porticotest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles cmd/portico into dir and returns the binary's path. Call it
// from TestMain: `go build` is slow to run once per test. It asks for the
// VCS stamp (portico version) even when GOFLAGS turns it off; a tree
// without .git builds all the same, unstamped.
func Build(dir string) (string, error) {
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "github.com/portico/portico/cmd/portico").Output()
	if err != nil {
		return "", fmt.Errorf("locate cmd/portico: %w", err)
	}
	return buildIn(strings.TrimSpace(string(out)), dir)
}

// buildIn builds the main package in src into dir/portico.
func buildIn(src, dir string) (string, error) {
	bin := filepath.Join(dir, "portico")
	// Go stamps only a checkout whose .git is a directory, not a git
	// worktree's .git file.
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	build.Dir = src
	if b, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build portico: %w\n%s", err, b)
	}
	return bin, nil
}

// Proc is a portico process run by a test. It is stopped when the test
// ends, and its log is printed if the test failed.
type Proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start runs `bin args...` with extra environment variables.
//
// The Docker daemon is shared: `run` and `reporter` must be given a
// --label-filter that selects only the test's own containers, and Start
// fails the test without one. When the test ends, a process still running
// must not serve the decoy container (dockertest.WithDecoy) on any
// --http-addr, or the test fails.
func Start(t testing.TB, bin string, env []string, args ...string) *Proc {
	t.Helper()
	if needsLabelFilter(args) {
		t.Fatalf("portico %s without --label-filter: it would serve every container on the shared Docker daemon (give it %s=<run id>)", args[0], RunLabel)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	p := &Proc{t: t, cmd: cmd, log: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	// Own process group: nginx children die with the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start portico %v: %v", args, err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			checkDecoy(t, args)
		}
		p.Stop()
		if t.Failed() {
			t.Logf("portico %s log:\n%s", args[0], p.log.String())
		}
	})
	return p
}

// Stop sends SIGTERM and waits; after 15 s it kills the process group.
func (p *Proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Errorf("portico did not stop within 15s of SIGTERM")
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Output is what the process wrote to stdout and stderr so far.
func (p *Proc) Output() string { return p.log.String() }

// Kill sends SIGKILL to portico alone (its nginx children survive, as they
// would after a crash).
func (p *Proc) Kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	return handedOut.next(t)
}

// portSet remembers every port FreePort handed out in this test binary:
// the kernel may give the same free port to two listen-and-close calls in
// a row, and two servers of one test (nginx's HTTPS and the metrics, say)
// then collide. It is shared by every test of the binary on purpose.
//
// Ports come from below the kernel's ephemeral range when there is room:
// a port from that range may meanwhile become the source port of any
// outgoing connection (another test's client to 127.0.0.1), and a server
// that binds it then fails with "address already in use".
type portSet struct {
	mu   sync.Mutex
	seen map[int]bool
}

var handedOut = &portSet{seen: map[int]bool{}}

func (s *portSet) next(t testing.TB) int {
	t.Helper()
	lo, hi := belowEphemeral()
	for range 200 {
		var port int
		if hi > lo {
			port = lo + rand.IntN(hi-lo)
			l, err := net.Listen("tcp", Addr(port))
			if err != nil {
				continue // taken
			}
			l.Close()
		} else {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port = l.Addr().(*net.TCPAddr).Port
			l.Close()
		}
		s.mu.Lock()
		fresh := !s.seen[port]
		s.seen[port] = true
		s.mu.Unlock()
		if fresh {
			return port
		}
	}
	t.Fatal("no free port that was not handed out before")
	return 0
}

// belowEphemeral is the range [lo, hi) of up to 12,000 ports just below
// the kernel's ephemeral ports (ip_local_port_range), never below 10,000;
// empty when the ephemeral range starts too low to leave room.
func belowEphemeral() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	hi, err = strconv.Atoi(f[0])
	if err != nil {
		return 0, 0
	}
	lo = max(10000, hi-12000)
	if hi-lo < 1000 {
		return 0, 0
	}
	return lo, hi
}

// Addr is 127.0.0.1:port.
func Addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// Eventually polls f every 20ms until it returns nil or the deadline passes.
func Eventually(t testing.TB, within time.Duration, what string, f func() error) {
	t.Helper()
	if err := poll(within, f); err != nil {
		t.Fatalf("after %s: %s: %v", within, what, err)
	}
}

// Check is Eventually that fails the test but lets it go on: what comes
// after is still measured (before/after figures) when this fails.
func Check(t testing.TB, within time.Duration, what string, f func() error) {
	t.Helper()
	if err := poll(within, f); err != nil {
		t.Errorf("after %s: %s: %v", within, what, err)
	}
}

// poll calls f every 20ms until it returns nil, or returns its last error
// once within has passed.
func poll(within time.Duration, f func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		<-time.After(20 * time.Millisecond)
	}
}

// PlainClient sends one request per connection and never follows redirects.
var PlainClient = &http.Client{
	Timeout: 3 * time.Second,
	// Redirects are asserted, not followed.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     &http.Transport{DisableKeepAlives: true},
}

// Get sends GET http://addr/ with the Host header and returns status and body.
func Get(addr, host string) (int, string, error) {
	return GetWithin(addr, host, PlainClient.Timeout)
}

// GetWithin is Get with its own timeout.
func GetWithin(addr, host string, timeout time.Duration) (int, string, error) {
	req, err := http.NewRequest("GET", "http://"+addr+"/", nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := PlainClient.Do(req.WithContext(ctx))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// GetTLS sends GET https://host/ to addr with SNI host, trusting roots.
func GetTLS(addr, host string, roots *x509.CertPool) (int, string, *x509.Certificate, error) {
	tr := &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: host},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	resp, err := c.Get("https://" + host + "/")
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	var leaf *x509.Certificate
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		leaf = resp.TLS.PeerCertificates[0]
	}
	return resp.StatusCode, string(b), leaf, err
}

// Expect200 returns nil once host answers 200 with a body containing want.
func Expect200(addr, host, want string) error {
	code, body, err := Get(addr, host)
	if err != nil {
		return err
	}
	if code != 200 || !strings.Contains(body, want) {
		return fmt.Errorf("GET %s Host %s: %d %q, want 200 containing %q", addr, host, code, body, want)
	}
	return nil
}

// Metric scrapes a Prometheus text endpoint and sums the samples of name.
func Metric(metricsAddr, name string) (float64, error) {
	resp, err := PlainClient.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %q: %w", name, line, err)
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("metric %s not exported", name)
	}
	return sum, sc.Err()
}

// StatusExitProblems is the exit code of `portico status` when its report
// holds errors (README, "Exit codes").
const StatusExitProblems = 3

// StatusJSON runs `bin status --json` with args and decodes it.
func StatusJSON(t testing.TB, bin string, args ...string) map[string]any {
	t.Helper()
	m, err := TryStatusJSON(bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TryStatusJSON is StatusJSON for polling: it returns the error instead of
// failing the test (the store may not answer yet). Exit code 3 (the report
// holds errors) is a report like any other: tests assert on its content.
func TryStatusJSON(bin string, args ...string) (map[string]any, error) {
	cmd := exec.Command(bin, append([]string{"status", "--json"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == StatusExitProblems {
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("portico status: %v\n%s%s", err, out, stderr.Bytes())
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("portico status --json: %v\n%s", err, out)
	}
	return m, nil
}

// Main is a TestMain body: it builds portico into a temp dir, stores its
// path in *bin, runs the tests and exits with their code. A failed build
// exits 1.
//
// m is a *testing.M, or one wrapped by dockertest.WithDecoy.
//
// PORTICO_TEST_BINARY, when set, is used instead of a build: to measure
// an older binary with the same tests (before/after figures in docs).
func Main(m interface{ Run() int }, bin *string) {
	if b := os.Getenv("PORTICO_TEST_BINARY"); b != "" {
		*bin = b
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "portico-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin, err = Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
