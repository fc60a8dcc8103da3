package bench

// Helpers of the issue-10 benchmarks (BenchmarkI10*): HTTPS runs with the
// local CA, nginx's processes and their CPU time and PSS, a websocket client.

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	be "encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/testenv/dockertest"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// startRunOwn is startRun whose reporter sees only this run's containers
// (--label-filter): other tests on the same Docker daemon would otherwise
// add their changes (and reloads, and certificates) to the figures.
func startRunOwn(b *testing.B, d *dockertest.Env, network string, extra ...string) *run {
	b.Helper()
	return startRun(b, d, network, append([]string{"--label-filter", dockertest.RunLabel + "=" + d.RunID}, extra...)...)
}

// startRunTLS is startRunOwn with an HTTPS listener on a free port; it
// returns the run and the HTTPS address.
func startRunTLS(b *testing.B, d *dockertest.Env, network string, extra ...string) (*run, string) {
	b.Helper()
	https := addr(freePort(b))
	// Flags given later win: this --https-addr replaces startRun's "".
	r := startRunOwn(b, d, network, append([]string{"--https-addr", https}, extra...)...)
	return r, https
}

// localCARoots is the local CA's root as `portico status --local-ca-cert`
// prints it; the CA exists once the certs stage issued its first
// certificate, so this polls.
func localCARoots(b *testing.B, r *run) *x509.CertPool {
	b.Helper()
	var roots *x509.CertPool
	porticotest.Eventually(b, time.Minute, "portico status --local-ca-cert", func() error {
		out, err := exec.Command(binary, "status", "--data-dir", r.dataDir, "--local-ca-cert").CombinedOutput()
		if err != nil {
			return fmt.Errorf("status --local-ca-cert: %v: %s", err, out)
		}
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(out) {
			return fmt.Errorf("no certificate in %q", out)
		}
		roots = p
		return nil
	})
	return roots
}

// waitLiveTLS waits until host answers 200 over HTTPS at https, verified
// against roots.
func waitLiveTLS(b *testing.B, https, host string, roots *x509.CertPool, within time.Duration) {
	b.Helper()
	porticotest.Eventually(b, within, host+" live over HTTPS", func() error {
		code, _, _, err := porticotest.GetTLS(https, host, roots)
		if err == nil && code != 200 {
			err = fmt.Errorf("%s: %d", host, code)
		}
		return err
	})
}

// nginxPIDFile is the supervised nginx's pid file under a run's data dir.
func nginxPIDFile(dataDir string) string { return filepath.Join(dataDir, "nginx", "logs", "nginx.pid") }

// nginxProcs is the nginx master whose pid is in pidFile and its children
// (workers, cache manager).
func nginxProcs(pidFile string) ([]int, error) {
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		return nil, fmt.Errorf("nginx pid file: %w", err)
	}
	master, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("nginx pid file %s: %w", pidFile, err)
	}
	return withChildren(master)
}

// withChildren is pid and its direct children.
func withChildren(pid int) ([]int, error) {
	kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil, fmt.Errorf("children of %d: %w", pid, err)
	}
	pids := []int{pid}
	for _, k := range strings.Fields(string(kids)) {
		n, err := strconv.Atoi(k)
		if err != nil {
			return nil, fmt.Errorf("children of %d: %q: %w", pid, k, err)
		}
		pids = append(pids, n)
	}
	return pids, nil
}

// retiring is an error while a child of the nginx master in pidFile is a
// worker of an older generation ("worker process is shutting down"): a
// reload is not finished yet.
func retiring(pidFile string) error {
	procs, err := nginxProcs(pidFile)
	if err != nil {
		return err
	}
	for _, p := range procs[1:] {
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if err != nil {
			continue // gone meanwhile
		}
		if strings.Contains(string(cmd), "shutting down") {
			return fmt.Errorf("nginx worker %d is shutting down", p)
		}
	}
	return nil
}

// cpuTicks sums utime+stime (clock ticks, 100 per second on Linux) of pids.
func cpuTicks(pids []int) (int64, error) {
	var sum int64
	for _, p := range pids {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			return 0, fmt.Errorf("cpu time of %d: %w", p, err)
		}
		s := string(st)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) < 13 {
			return 0, fmt.Errorf("cpu time of %d: short stat %q", p, s)
		}
		for _, x := range f[11:13] { // utime, stime (fields 14 and 15)
			n, err := strconv.ParseInt(x, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("cpu time of %d: %w", p, err)
			}
			sum += n
		}
	}
	return sum, nil
}

// tick is one clock tick of /proc/<pid>/stat (USER_HZ, 100 on Linux).
const tick = 10 * time.Millisecond

// pssBytes sums the proportional set size of pids (/proc/<pid>/smaps_rollup).
func pssBytes(pids []int) (int64, error) {
	var sum int64
	for _, p := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p))
		if err != nil {
			return 0, fmt.Errorf("pss of %d: %w", p, err)
		}
		found := false
		for l := range strings.Lines(string(raw)) {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "Pss:" {
				kb, err := strconv.ParseInt(f[1], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("pss of %d: %w", p, err)
				}
				sum += kb << 10
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("pss of %d: no Pss line", p)
		}
	}
	return sum, nil
}

// pipelinePSS is the PSS of the whole pipeline of r: the portico process
// (embedded etcd included) plus nginx master and workers.
func pipelinePSS(b *testing.B, r *run) (total, porticoPart int64) {
	b.Helper()
	ng, err := nginxProcs(nginxPIDFile(r.dataDir))
	if err != nil {
		b.Fatal(err)
	}
	p, err := pssBytes([]int{r.proc.Pid()})
	if err != nil {
		b.Fatal(err)
	}
	n, err := pssBytes(ng)
	if err != nil {
		b.Fatal(err)
	}
	return p + n, p
}

// nginxPSSDetail lists the PSS of each nginx process of r with its title,
// e.g. "master 20.1 MB, worker 300.2 MB, worker 299.8 MB".
func nginxPSSDetail(b *testing.B, r *run) string {
	b.Helper()
	procs, err := nginxProcs(nginxPIDFile(r.dataDir))
	if err != nil {
		b.Fatal(err)
	}
	var parts []string
	for _, p := range procs {
		n, err := pssBytes([]int{p})
		if err != nil {
			continue // gone meanwhile
		}
		title, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		kind, _, _ := strings.Cut(strings.TrimPrefix(string(title), "nginx: "), " ")
		parts = append(parts, fmt.Sprintf("%s %.1f MB", kind, float64(n)/1e6))
	}
	return strings.Join(parts, ", ")
}

// wsConn is a websocket client connection (RFC 6455, text frames).
type wsConn struct {
	c  net.Conn
	br *bufio.Reader
}

// dialWS opens ws://addr/ws with the Host header through nginx.
func dialWS(addr, host string) (*wsConn, error) {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return nil, err
	}
	k := make([]byte, 16)
	rand.Read(k)
	key := base64.StdEncoding.EncodeToString(k)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", host, key)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("websocket upgrade via %s for %s: %w", addr, host, err)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		c.Close()
		return nil, fmt.Errorf("websocket upgrade via %s for %s: %s", addr, host, resp.Status)
	}
	c.SetDeadline(time.Time{})
	return &wsConn{c: c, br: br}, nil
}

// echo sends msg as a masked text frame and waits (up to timeout) for the
// same text back.
func (w *wsConn) echo(msg string, timeout time.Duration) error {
	w.c.SetDeadline(time.Now().Add(timeout))
	defer w.c.SetDeadline(time.Time{})
	p := []byte(msg)
	if len(p) > 125 {
		return errors.New("websocket test message over 125 bytes")
	}
	var mask [4]byte
	rand.Read(mask[:])
	frame := append([]byte{0x81, 0x80 | byte(len(p))}, mask[:]...)
	for i, c := range p {
		frame = append(frame, c^mask[i%4])
	}
	if _, err := w.c.Write(frame); err != nil {
		return fmt.Errorf("websocket write: %w", err)
	}
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		return fmt.Errorf("websocket read: %w", err)
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		var e [2]byte
		if _, err := io.ReadFull(w.br, e[:]); err != nil {
			return fmt.Errorf("websocket read: %w", err)
		}
		n = int(be.BigEndian.Uint16(e[:]))
	}
	got := make([]byte, n)
	if _, err := io.ReadFull(w.br, got); err != nil {
		return fmt.Errorf("websocket read: %w", err)
	}
	if h[0]&0x0f != 0x1 || string(got) != msg {
		return fmt.Errorf("websocket echo: opcode %d %q, want text %q", h[0]&0x0f, got, msg)
	}
	return nil
}

func (w *wsConn) Close() error { return w.c.Close() }
