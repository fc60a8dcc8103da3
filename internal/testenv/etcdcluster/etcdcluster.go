// Package etcdcluster runs a real multi-member etcd cluster for tests: each
// member is its own process (internal/testenv/etcdproc, etcd's embed
// server), on loopback, optionally with TLS between members and to clients
// (client certificates required). A member can be killed with SIGKILL and
// started again on its data dir, so a test can kill the leader for real.
//
//	bin, _ := etcdcluster.Build(dir)               // once per test binary
//	c := etcdcluster.Start(t, bin, 3, true)        // three members, TLS
//	args := c.Flags()                              // --etcd-endpoints ... --etcd-ca ...
//	c.Kill(c.Leader(t)); c.Restart(t, i)
package etcdcluster

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/testenv/porticotest"
)

// Build compiles the etcdproc server into dir and returns its path.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "etcdproc")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/portico/portico/internal/testenv/etcdproc").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build etcdproc: %w: %s", err, out)
	}
	return bin, nil
}

// TLSFiles are the PEM files a client (a Portico stage) uses: the CA that
// signed the members, and a client certificate and key it signed.
type TLSFiles struct {
	CA, Cert, Key string
}

// Cluster is a running test cluster.
type Cluster struct {
	Members []*Member
	// TLS is nil for a plain-http cluster.
	TLS *TLSFiles
	bin string
	dir string
}

// Member is one etcd process.
type Member struct {
	Name      string
	ClientURL string
	PeerURL   string
	args      []string
	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{}
}

// Start starts n members that form one cluster and waits until each
// serves. The members are killed when the test ends.
func Start(t testing.TB, bin string, n int, withTLS bool) *Cluster {
	t.Helper()
	return StartAt(t, bin, n, withTLS, netip.AddrFrom4([4]byte{127, 0, 0, 1}))
}

// StartAt is Start with the members serving clients at ip instead of
// 127.0.0.1: an address of the test's own network (a test host in a
// network namespace reaches the cluster there, dockertest.LAN). The
// members' certificates name ip too; peers stay on loopback.
func StartAt(t testing.TB, bin string, n int, withTLS bool, ip netip.Addr) *Cluster {
	t.Helper()
	c := &Cluster{bin: bin, dir: t.TempDir()}
	scheme := "http"
	var tlsDir string
	if withTLS {
		scheme = "https"
		tlsDir = filepath.Join(c.dir, "tls")
		files, err := writeTLS(tlsDir, ip)
		if err != nil {
			t.Fatal(err)
		}
		c.TLS = files
	}
	var initial []string
	for i := range n {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: scheme + "://" + net.JoinHostPort(ip.String(), strconv.Itoa(porticotest.FreePort(t))),
			PeerURL:   scheme + "://" + porticotest.Addr(porticotest.FreePort(t)),
		}
		initial = append(initial, m.Name+"="+m.PeerURL)
		c.Members = append(c.Members, m)
	}
	for _, m := range c.Members {
		m.args = []string{"--dir", filepath.Join(c.dir, m.Name), "--name", m.Name,
			"--client-addr", strings.TrimPrefix(m.ClientURL, scheme+"://"),
			"--peer-addr", strings.TrimPrefix(m.PeerURL, scheme+"://"),
			"--initial-cluster", strings.Join(initial, ","), "--cluster-token", "etcdcluster-" + filepath.Base(c.dir)}
		if tlsDir != "" {
			m.args = append(m.args, "--tls-dir", tlsDir)
		}
	}
	t.Cleanup(func() {
		for _, m := range c.Members {
			m.kill()
		}
	})
	// Members wait for each other before they are ready: start all, then wait.
	ready := make([]chan error, n)
	for i, m := range c.Members {
		ready[i] = m.start(bin)
	}
	for i, ch := range ready {
		if err := <-ch; err != nil {
			t.Fatalf("etcd member %s: %v", c.Members[i].Name, err)
		}
	}
	return c
}

// start runs the member and returns a channel that gets nil once it printed
// "ready", or an error.
func (m *Member) start(bin string) chan error {
	ready := make(chan error, 1)
	cmd := exec.Command(bin, m.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		ready <- err
		return ready
	}
	var stderr strings.Builder
	cmd.Stderr = &lockedWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		ready <- err
		return ready
	}
	done := make(chan struct{})
	m.mu.Lock()
	m.cmd, m.done = cmd, done
	m.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ready ") {
				ready <- nil
			}
		}
		cmd.Wait()
		close(done)
		select {
		case ready <- fmt.Errorf("exited before it was ready: %s: %s", cmd.ProcessState, stderr.String()):
		default:
		}
	}()
	go func() {
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			select {
			case ready <- fmt.Errorf("not ready after 60s"):
			default:
			}
		}
	}()
	return ready
}

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w.Len() < 64<<10 {
		l.w.Write(p)
	}
	return len(p), nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (m *Member) kill() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Running reports whether the member's process runs.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// Pid is the member's process id.
func (m *Member) Pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd.Process.Pid
}

// Kill kills member i with SIGKILL, as a crash would.
func (c *Cluster) Kill(i int) { c.Members[i].kill() }

// Restart starts member i again on its data dir and waits until it serves.
func (c *Cluster) Restart(t testing.TB, i int) {
	t.Helper()
	m := c.Members[i]
	m.kill()
	if err := <-m.start(c.bin); err != nil {
		t.Fatalf("restart etcd member %s: %v", m.Name, err)
	}
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.ClientURL)
	}
	return eps
}

// Flags are the etcd flags of a Portico stage that uses this cluster.
func (c *Cluster) Flags() []string {
	f := []string{"--etcd-endpoints", strings.Join(c.Endpoints(), ",")}
	if c.TLS != nil {
		f = append(f, "--etcd-ca", c.TLS.CA, "--etcd-cert", c.TLS.Cert, "--etcd-key", c.TLS.Key)
	}
	return f
}

// Config is a client configuration for the cluster (every member).
func (c *Cluster) Config() (clientv3.Config, error) {
	cfg := clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second}
	if c.TLS != nil {
		cert, err := tls.LoadX509KeyPair(c.TLS.Cert, c.TLS.Key)
		if err != nil {
			return cfg, err
		}
		pem, err := os.ReadFile(c.TLS.CA)
		if err != nil {
			return cfg, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return cfg, nil
}

// Client is a client of every member, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cfg, err := c.Config()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Leader is the index of the member that leads, asked of the running
// members until one answers (within 30 s).
func (c *Cluster) Leader(t testing.TB) int {
	t.Helper()
	cli := c.Client(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, m := range c.Members {
			if !m.Running() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cli.Status(ctx, m.ClientURL)
			cancel()
			if err != nil || st.Leader == 0 {
				continue
			}
			for j, mm := range c.Members {
				if !mm.Running() {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				s2, err := cli.Status(ctx, mm.ClientURL)
				cancel()
				if err == nil && s2.Header.MemberId == st.Leader {
					return j
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no etcd member knows a running leader after 30s")
		}
		<-time.After(50 * time.Millisecond)
	}
}

// writeTLS writes a CA, one certificate for every member (server and peer
// client: 127.0.0.1, localhost and clientIP) and one client certificate
// into dir.
func writeTLS(dir string, clientIP netip.Addr) (*TLSFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "etcdcluster test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	if err := writePEM(filepath.Join(dir, "ca.pem"), "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	issue := func(serial int64, cn, name string, usage []x509.ExtKeyUsage) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usage,
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.IP(clientIP.AsSlice())}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(dir, name+".pem"), "CERTIFICATE", der); err != nil {
			return err
		}
		return writePEM(filepath.Join(dir, name+"-key.pem"), "EC PRIVATE KEY", kder)
	}
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if err := issue(2, "etcd member", "member", both); err != nil {
		return nil, err
	}
	if err := issue(3, "portico stage", "client", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}); err != nil {
		return nil, err
	}
	return &TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "client.pem"), Key: filepath.Join(dir, "client-key.pem")}, nil
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
