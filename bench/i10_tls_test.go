package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// sslSettings are the TLS settings of Portico's template (its "ssl"
// block) but the certificate lines, for the hand-written nginx.
const sslSettings = `    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305;
    ssl_prefer_server_ciphers off;
    ssl_session_cache shared:hand_ssl:10m;
    ssl_session_timeout 1d;
    ssl_session_tickets off;
`

// i10Handshakes is the number of handshakes per measured round.
const i10Handshakes = 1500

// BenchmarkI10TLSHandshakeCPU (issue 10, "TLS"): server CPU per new full
// handshake, nginx as Portico renders it against a hand-written nginx with
// a static ssl_certificate file per server, for 100 and 1,000 local-CA
// certificates (synthetic .test records; the hand-written nginx gets the
// very bundles Portico stored). A Go client that keeps no session
// (ClientSessionCache nil, SessionTicketsDisabled) makes 1,500 handshakes
// per round across all SNI names, 4 at a time, with TLS 1.3 and separately
// TLS 1.2; the CPU is utime+stime of the nginx master and workers
// (/proc/<pid>/stat) before and after. 4 rounds per server and version,
// alternating ABBA. Then a client with a session cache checks that its
// second connection resumes. Goal: CPU per handshake <= 1.1x the
// hand-written nginx; resumption works.
func BenchmarkI10TLSHandshakeCPU(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("certs=%d", n), func(b *testing.B) {
			for b.Loop() {
				tlsHandshakeCPU(b, n)
			}
		})
	}
}

func tlsHandshakeCPU(b *testing.B, n int) {
	d := newDocker(b)
	net := d.Network(b, "i10tls")
	r, httpsAddr := startRunTLS(b, d, net)
	_, ip := backend(b, d, net, "i10tlsback", nil)
	t0 := time.Now()
	writeSyntheticTLS(b, r, d.RunID, net, ip, 0, n, true)
	names := make([]string, n)
	for i := range names {
		names[i] = synthHost(d.RunID, i)
	}
	bundles := waitBundles(b, r, names, 3*time.Minute)
	roots := localCARoots(b, r)
	// Every name verifies over HTTPS through Portico's nginx.
	porticotest.Eventually(b, 3*time.Minute, "every name's certificate served", func() error {
		for _, h := range names {
			if err := handshake(httpsAddr, h, tls.VersionTLS13, roots); err != nil {
				return err
			}
		}
		return nil
	})
	b.Logf("I10 TLS: %d certificates issued and served %s after the records were written", n, time.Since(t0).Round(time.Millisecond))

	// The hand-written nginx: one server per name, its bundle as files.
	certDir := b.TempDir()
	handAddr, handPid := startHandNginx(b, func(listen string) string {
		var c strings.Builder
		for _, bu := range bundles {
			crt, key := filepath.Join(certDir, bu.Primary+".crt"), filepath.Join(certDir, bu.Primary+".key")
			if err := os.WriteFile(crt, []byte(bu.FullChain()), 0o644); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(key, []byte(bu.KeyPEM), 0o600); err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(&c, "server {\n    listen %s ssl;\n    server_name %s;\n    ssl_certificate %s;\n    ssl_certificate_key %s;\n%s    location / { return 200 \"ok\\n\"; }\n}\n",
				listen, bu.Primary, crt, key, sslSettings)
		}
		return c.String()
	}, func(listen string) error { return handshake(listen, names[0], tls.VersionTLS13, roots) })

	// Portico's nginx at rest: no apply pending, no retiring worker.
	<-time.After(3 * time.Second)
	pidFile := nginxPIDFile(r.dataDir)
	porticotest.Eventually(b, time.Minute, "no worker shutting down", func() error { return retiring(pidFile) })
	porticoProcs := func() []int {
		p, err := nginxProcs(pidFile)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	handProcs := func() []int {
		p, err := withChildren(handPid)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	type server struct {
		name  string
		addr  string
		procs func() []int
	}
	servers := []server{{"portico", httpsAddr, porticoProcs}, {"hand", handAddr, handProcs}}
	// round measures one server: CPU per handshake and handshakes/s.
	round := func(s server, version uint16) (time.Duration, float64) {
		procs := s.procs()
		c0, err := cpuTicks(procs)
		if err != nil {
			b.Fatal(err)
		}
		w0 := time.Now()
		if err := handshakes(s.addr, names, i10Handshakes, 4, version, roots); err != nil {
			b.Fatalf("%s: %v", s.name, err)
		}
		wall := time.Since(w0)
		if p := s.procs(); fmt.Sprint(p) != fmt.Sprint(procs) {
			b.Fatalf("%s: nginx processes changed during the round (%v -> %v): a reload", s.name, procs, p)
		}
		c1, err := cpuTicks(procs)
		if err != nil {
			b.Fatal(err)
		}
		return time.Duration(c1-c0) * tick / i10Handshakes, i10Handshakes / wall.Seconds()
	}
	for _, v := range []struct {
		name    string
		version uint16
	}{{"TLS1.3", tls.VersionTLS13}, {"TLS1.2", tls.VersionTLS12}} {
		cpu := map[string]time.Duration{}
		rate := map[string]float64{}
		var perRound []string
		const rounds = 4
		for i := range rounds {
			order := servers
			if i%2 == 1 {
				order = []server{servers[1], servers[0]}
			}
			got := map[string]time.Duration{}
			for _, s := range order {
				c, hs := round(s, v.version)
				got[s.name] = c
				cpu[s.name] += c / rounds
				rate[s.name] += hs / rounds
			}
			perRound = append(perRound, fmt.Sprintf("%.2f", got["portico"].Seconds()/got["hand"].Seconds()))
		}
		ratio := cpu["portico"].Seconds() / cpu["hand"].Seconds()
		b.Logf("I10 TLS: certs=%d %s full handshakes (no session cache, no tickets), %d per round x %d rounds each: nginx CPU per handshake portico %s, hand-written (static ssl_certificate files) %s, ratio %.2f (rounds %s); handshakes/s portico %.0f, hand-written %.0f, ratio %.2f (goal CPU ratio <= 1.1)",
			n, v.name, i10Handshakes, rounds, cpu["portico"].Round(time.Microsecond), cpu["hand"].Round(time.Microsecond), ratio, strings.Join(perRound, " "),
			rate["portico"], rate["hand"], rate["portico"]/rate["hand"])
		b.ReportMetric(ratio, "cpu-ratio/"+v.name)
		b.ReportMetric(cpu["portico"].Seconds()*1000, "portico-cpu-ms/"+v.name)
		b.ReportMetric(cpu["hand"].Seconds()*1000, "hand-cpu-ms/"+v.name)
	}
	var res []string
	for _, s := range servers {
		for _, v := range []struct {
			name    string
			version uint16
		}{{"TLS1.3", tls.VersionTLS13}, {"TLS1.2", tls.VersionTLS12}} {
			resume := resumes
			if v.version == tls.VersionTLS12 {
				resume = resumesOpenSSL
			}
			resumed, err := resume(s.addr, names[len(names)-1], v.version, roots)
			if err != nil {
				b.Fatalf("%s %s resumption: %v", s.name, v.name, err)
			}
			res = append(res, fmt.Sprintf("%s %s resumed=%v", s.name, v.name, resumed))
		}
	}
	b.Logf("I10 TLS: certs=%d session resumption (second connection of a client that keeps its session; TLS 1.3: Go, TLS 1.2: openssl s_client -sess_out/-sess_in, since Go resumes TLS 1.2 only by tickets, which the template turns off): %s", n, strings.Join(res, ", "))
}

// waitBundles waits until a certificate bundle is stored for each name and
// returns them, in the order of names.
func waitBundles(b *testing.B, r *run, names []string, within time.Duration) []store.CertBundle {
	b.Helper()
	var out []store.CertBundle
	porticotest.Eventually(b, within, fmt.Sprintf("%d certificates stored", len(names)), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := r.cli.Get(ctx, r.keys.CertData(), clientv3.WithPrefix())
		if err != nil {
			return err
		}
		byName := map[string]store.CertBundle{}
		for _, kv := range resp.Kvs {
			var bu store.CertBundle
			if err := store.Decode(string(kv.Key), kv.Value, &bu); err != nil {
				return err
			}
			byName[bu.Primary] = bu
		}
		out = out[:0]
		for _, n := range names {
			bu, ok := byName[n]
			if !ok {
				return fmt.Errorf("%d of %d certificates stored; none yet for %s", len(out), len(names), n)
			}
			out = append(out, bu)
		}
		return nil
	})
	return out
}

// tlsClient is a client config that keeps no session: every handshake is a
// full one.
func tlsClient(host string, version uint16, roots *x509.CertPool) *tls.Config {
	return &tls.Config{ServerName: host, RootCAs: roots, MinVersion: version, MaxVersion: version,
		ClientSessionCache: nil, SessionTicketsDisabled: true}
}

// handshake makes one full, verified handshake with addr for host.
func handshake(addr, host string, version uint16, roots *x509.CertPool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := (&tls.Dialer{Config: tlsClient(host, version, roots)}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("handshake with %s for %s: %w", addr, host, err)
	}
	return c.Close()
}

// handshakes makes n full handshakes with addr, conc at a time, cycling
// through names.
func handshakes(addr string, names []string, n, conc int, version uint16, roots *x509.CertPool) error {
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for w := range conc {
		wg.Go(func() {
			for i := w; i < n; i += conc {
				if err := handshake(addr, names[i%len(names)], version, roots); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// resumes reports whether a client with a session cache resumes its
// session on a second connection to addr for host (a request on each, so
// that TLS 1.3's session ticket, sent after the handshake, is read).
func resumes(addr, host string, version uint16, roots *x509.CertPool) (bool, error) {
	cfg := &tls.Config{ServerName: host, RootCAs: roots, MinVersion: version, MaxVersion: version,
		ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: cfg,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var resumed bool
	for i := range 2 {
		resp, err := c.Get("https://" + host + "/")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		if i == 1 {
			resumed = resp.TLS != nil && resp.TLS.DidResume
		}
	}
	return resumed, nil
}

// resumesOpenSSL reports whether `openssl s_client` resumes a TLS 1.2
// session (by session id) on a second connection to addr for host.
func resumesOpenSSL(addr, host string, version uint16, _ *x509.CertPool) (bool, error) {
	if version != tls.VersionTLS12 {
		return false, fmt.Errorf("resumesOpenSSL: TLS 1.2 only")
	}
	sess := filepath.Join(os.TempDir(), fmt.Sprintf("i10-sess-%d-%d", os.Getpid(), time.Now().UnixNano()))
	defer os.Remove(sess)
	run := func(arg ...string) (string, error) {
		cmd := exec.Command("openssl", append([]string{"s_client", "-connect", addr, "-servername", host, "-tls1_2"}, arg...)...)
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("openssl s_client %v: %w\n%s", arg, err, out)
		}
		return string(out), nil
	}
	if _, err := run("-sess_out", sess); err != nil {
		return false, err
	}
	out, err := run("-sess_in", sess)
	if err != nil {
		return false, err
	}
	return strings.Contains(out, "\nReused,"), nil
}
