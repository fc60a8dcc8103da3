package e2e

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
	"github.com/portico/portico/internal/testenv/acmetest"
	"github.com/portico/portico/internal/testenv/dockertest"
)

// acmeSetup is a real Pebble + BIND9 pair and the flags and environment that
// point portico at them.
type acmeSetup struct {
	env   *acmetest.Env
	roots *x509.CertPool
	flags []string
	vars  []string
}

func startACME(t *testing.T, opts acmetest.Options, tsigSecret string) *acmeSetup {
	t.Helper()
	a := &acmeSetup{env: acmetest.Start(t, opts)}
	caFile := filepath.Join(t.TempDir(), "pebble-minica.pem")
	if err := os.WriteFile(caFile, a.env.DirectoryCA, 0o600); err != nil {
		t.Fatal(err)
	}
	a.roots = x509.NewCertPool()
	if !a.roots.AppendCertsFromPEM(a.env.Root(t)) {
		t.Fatal("pebble root: no certificate")
	}
	a.roots.AppendCertsFromPEM(a.env.Intermediates(t))
	if tsigSecret == "" {
		tsigSecret = a.env.TSIGSecret
	}
	a.flags = []string{
		"--acme-directory", a.env.DirectoryURL,
		"--acme-ca-roots", caFile,
		"--dns-provider", a.env.Zone + "=dnsupdate",
		"--dns-resolvers", a.env.DNSAddr,
		"--dns-skip-authoritative-check",
		"--dns-propagation-timeout", "10s",
	}
	a.vars = []string{
		"DNSUPDATE_NAMESERVER=" + a.env.DNSAddr,
		"DNSUPDATE_TSIG_KEY=" + a.env.TSIGKey,
		"DNSUPDATE_TSIG_SECRET=" + tsigSecret,
		"DNSUPDATE_TSIG_ALGORITHM=" + a.env.TSIGAlgorithm,
		"DNSUPDATE_ZONES=" + a.env.Zone,
		"DNSUPDATE_POLLING_INTERVAL=1",
		"DNSUPDATE_SEQUENCE_INTERVAL=1",
		"DNSUPDATE_PROPAGATION_TIMEOUT=10",
	}
	return a
}

// startRunACME starts `portico run` against Pebble and BIND.
func startRunACME(t *testing.T, d *dockertest.Env, a *acmeSetup, network, dataDir string, extra ...string) *pipeline {
	t.Helper()
	p := &pipeline{dataDir: dataDir, http: addr(freePort(t)), https: addr(freePort(t)), metrics: addr(freePort(t))}
	args := append([]string{"run", "--data-dir", p.dataDir, "--http-addr", p.http, "--https-addr", p.https,
		"--metrics-addr", p.metrics, "--network", network, "--host", "e2e-" + d.RunID, "--log-level", "debug",
		"--renew-check-interval", "1s", "--label-filter", dockertest.RunLabel + "=" + d.RunID}, a.flags...)
	p.proc = start(t, a.vars, append(args, extra...)...)
	waitDefault404(t, p.http)
	return p
}

// storeClient connects to the embedded etcd of a running `portico run`.
func storeClient(t *testing.T, dataDir string) *clientv3.Client {
	t.Helper()
	ep, err := store.ReadEndpoint(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := store.Connect(store.Config{Endpoints: []string{ep}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func bundle(t *testing.T, cli *clientv3.Client, primary string) (store.CertBundle, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, store.NewKeys(store.DefaultPrefix).CertBundle(primary))
	if err != nil || len(resp.Kvs) == 0 {
		return store.CertBundle{}, false
	}
	var b store.CertBundle
	if err := store.Decode(string(resp.Kvs[0].Key), resp.Kvs[0].Value, &b); err != nil {
		t.Fatal(err)
	}
	return b, true
}

func certState(t *testing.T, cli *clientv3.Client, primary string) store.CertState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var s store.CertState
	resp, err := cli.Get(ctx, store.NewKeys(store.DefaultPrefix).CertState(primary))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) > 0 {
		if err := store.Decode(string(resp.Kvs[0].Key), resp.Kvs[0].Value, &s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func orders(s store.CertState) int {
	n := 0
	for _, ts := range s.Orders {
		n += len(ts)
	}
	return n
}

// serial returns the serial, as the store writes it, of the certificate
// served for host, or an error if HTTPS does not verify.
func servedSerial(httpsAddr, host, want string, roots *x509.CertPool) (string, error) {
	code, body, leaf, err := getTLS(httpsAddr, host, roots)
	if err != nil {
		return "", err
	}
	if code != 200 || !strings.Contains(body, want) {
		return "", fmt.Errorf("HTTPS %s: %d %q", host, code, body)
	}
	return fmt.Sprintf("%x", leaf.SerialNumber), nil
}

func TestACMECertificateServedOverHTTPS(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	a := startACME(t, acmetest.Options{}, "")
	net := d.Network(t, "acme")
	dataDir := t.TempDir()
	p := startRunACME(t, d, a, net, dataDir)
	host := "app-" + d.RunID + "." + a.env.Zone
	alt := "www-" + d.RunID + "." + a.env.Zone
	d.Run(t, dockertest.RunOptions{Name: "app", Network: net, Labels: map[string]string{"portico.vhost": host + "," + alt}})

	// Until the certificate exists the site is served over HTTP.
	eventually(t, 15*time.Second, "site served over HTTP before its certificate", func() error {
		code, body, err := get(p.http, host)
		if err != nil {
			return err
		}
		if code == 200 && strings.Contains(body, d.Name("app")) || code == 301 {
			return nil
		}
		return fmt.Errorf("%d %q", code, body)
	})

	cli := storeClient(t, dataDir)
	var b store.CertBundle
	eventually(t, 60*time.Second, "certificate stored", func() error {
		var ok bool
		if b, ok = bundle(t, cli, host); !ok {
			return fmt.Errorf("no bundle for %s yet", host)
		}
		return nil
	})
	var served string
	eventually(t, 10*time.Second, "HTTPS verifies against Pebble's root", func() error {
		var err error
		served, err = servedSerial(p.https, host, d.Name("app"), a.roots)
		return err
	})
	t.Logf("certificate stored -> HTTPS served: %s (poll interval 20ms)", time.Since(b.ObtainedAt).Round(time.Millisecond))
	if served != b.Serial {
		t.Errorf("served serial %s, stored %s", served, b.Serial)
	}
	if b.Issuer != store.IssuerACME || len(b.Names) != 2 || b.Names[0] != host {
		t.Errorf("bundle: issuer %q names %v", b.Issuer, b.Names)
	}
	// For about 100ms after a reload nginx's old workers still accept
	// connections with the old config, so the first verified handshake above
	// does not mean that every connection sees the certificate yet.
	eventually(t, 10*time.Second, "SAN served and HTTP redirected to HTTPS", func() error {
		if _, err := servedSerial(p.https, alt, d.Name("app"), a.roots); err != nil {
			return fmt.Errorf("SAN %s: %w", alt, err)
		}
		if code, _, err := get(p.http, host); err != nil || code != 301 {
			return fmt.Errorf("HTTP after certificate: %d %v, want 301", code, err)
		}
		return nil
	})
	// Key file is private.
	fi, err := os.Stat(filepath.Join(dataDir, "nginx", "certs", host, "privkey.pem"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("privkey.pem: %v %v, want mode 0600", fi, err)
	}
	before := orders(certState(t, cli, host))

	// Restart: nothing is re-ordered and the same certificate is served.
	p.proc.Stop()
	cli.Close()
	p2 := startRunACME(t, d, a, net, dataDir)
	cli2 := storeClient(t, dataDir)
	eventually(t, 20*time.Second, "same certificate served after restart", func() error {
		s, err := servedSerial(p2.https, host, d.Name("app"), a.roots)
		if err != nil {
			return err
		}
		if s != b.Serial {
			return fmt.Errorf("serial %s after restart, want %s", s, b.Serial)
		}
		return nil
	})
	if after := orders(certState(t, cli2, host)); after != before {
		t.Errorf("restart ordered again: %d orders before, %d after", before, after)
	}
}

func TestACMEWildcardCertificate(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	a := startACME(t, acmetest.Options{}, "")
	net := d.Network(t, "wild")
	dataDir := t.TempDir()
	p := startRunACME(t, d, a, net, dataDir, "--wildcard-domains", a.env.Zone)
	h1 := "one-" + d.RunID + "." + a.env.Zone
	h2 := "two-" + d.RunID + "." + a.env.Zone
	d.Run(t, dockertest.RunOptions{Name: "one", Network: net, Labels: map[string]string{"portico.vhost": h1}})
	d.Run(t, dockertest.RunOptions{Name: "two", Network: net, Labels: map[string]string{"portico.vhost": h2}})
	wildcard := "*." + a.env.Zone
	for _, h := range []struct{ host, name string }{{h1, "one"}, {h2, "two"}} {
		eventually(t, 90*time.Second, "wildcard certificate serves "+h.host, func() error {
			code, _, leaf, err := getTLS(p.https, h.host, a.roots)
			if err != nil {
				return err
			}
			if code != 200 || len(leaf.DNSNames) == 0 || !contains(leaf.DNSNames, wildcard) {
				return fmt.Errorf("%d, names %v", code, leaf.DNSNames)
			}
			return nil
		})
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func TestACMERenewalSwapsWithoutFailedRequests(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	// 60-second certificates: renewal is due 40s after issuance, leaving
	// 20s for the order (lego waits 5s before it polls) and the reload.
	a := startACME(t, acmetest.Options{Validity: 60 * time.Second}, "")
	net := d.Network(t, "renew")
	dataDir := t.TempDir()
	p := startRunACME(t, d, a, net, dataDir)
	host := "renew-" + d.RunID + "." + a.env.Zone
	d.Run(t, dockertest.RunOptions{Name: "renew", Network: net, Labels: map[string]string{"portico.vhost": host}})
	var first string
	eventually(t, 60*time.Second, "first certificate served", func() error {
		var err error
		first, err = servedSerial(p.https, host, d.Name("renew"), a.roots)
		return err
	})
	// nginx's old workers (config without the certificate) keep accepting
	// for a moment after the reload that brought the first certificate; the
	// swap measured below is the renewal's, so start once 20 handshakes in a
	// row got the first certificate.
	eventually(t, 30*time.Second, "first certificate served by every worker", func() error {
		for i := range 20 {
			if _, err := servedSerial(p.https, host, d.Name("renew"), a.roots); err != nil {
				return fmt.Errorf("handshake %d: %w", i, err)
			}
		}
		return nil
	})
	var (
		mu       sync.Mutex
		failures []string
		total    int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := servedSerial(p.https, host, d.Name("renew"), a.roots)
			mu.Lock()
			total++
			if err != nil {
				failures = append(failures, err.Error())
			}
			mu.Unlock()
		}
	})
	eventually(t, 120*time.Second, "renewed certificate served", func() error {
		s, err := servedSerial(p.https, host, d.Name("renew"), a.roots)
		if err != nil {
			return err
		}
		if s == first {
			return fmt.Errorf("still serial %s", s)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	t.Logf("renewal: %d HTTPS requests during the swap, %d failed", total, len(failures))
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed during renewal, first: %s", len(failures), total, failures[0])
	}
}

func TestACMEFailureBacksOffAndSparesOthers(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	// A wrong TSIG secret: BIND refuses every update.
	a := startACME(t, acmetest.Options{}, "d3JvbmcgdHNpZyBzZWNyZXQgZm9yIHRoZSB0ZXN0IQ==")
	net := d.Network(t, "refused")
	dataDir := t.TempDir()
	p := startRunACME(t, d, a, net, dataDir)
	bad := "refused-" + d.RunID + "." + a.env.Zone
	good := "fine-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "refused", Network: net, Labels: map[string]string{"portico.vhost": bad}})
	d.Run(t, dockertest.RunOptions{Name: "fine", Network: net, Labels: map[string]string{"portico.vhost": good}})

	eventually(t, 60*time.Second, "status shows the refusal with a retry time", func() error {
		st := statusJSON(t, "--data-dir", dataDir)
		certs, _ := st["certs"].([]any)
		for _, c := range certs {
			m := c.(map[string]any)
			if m["primary"] == bad && m["condition"] == "failing" && m["retry_at"] != nil && m["error"] != "" {
				return nil
			}
		}
		return fmt.Errorf("no failing entry for %s in %v", bad, certs)
	})
	// The refused name keeps serving over HTTP; the local-CA name gets HTTPS.
	if err := expect200(p.http, bad, d.Name("refused")); err != nil {
		t.Error(err)
	}
	cli := storeClient(t, dataDir)
	eventually(t, 30*time.Second, "other certificate unaffected", func() error {
		if _, ok := bundle(t, cli, good); !ok {
			return fmt.Errorf("no bundle for %s", good)
		}
		return nil
	})
	s1 := certState(t, cli, bad)
	if s1.Failures < 1 || !s1.RetryAt.After(s1.LastErrorAt) {
		t.Errorf("state after failure: %+v", s1)
	}
}

func TestStandaloneDomainsFile(t *testing.T) {
	t.Parallel()
	a := startACME(t, acmetest.Options{}, "")
	e := storetest.Start(t)
	dir := t.TempDir()
	domains := filepath.Join(dir, "domains.txt")
	n1 := "alpha." + a.env.Zone
	if err := os.WriteFile(domains, []byte("# certificates\n"+n1+" www."+a.env.Zone+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"certs", "--etcd-endpoints", e.Endpoint, "--domains-file", domains, "--renew-check-interval", "1s"}, a.flags...)
	// Two certs stages on one etcd, as on two hosts.
	start(t, a.vars, args...)
	start(t, a.vars, args...)
	eventually(t, 60*time.Second, "certificate from domains.txt", func() error {
		if _, ok := bundle(t, e.Client, n1); !ok {
			return fmt.Errorf("no bundle for %s", n1)
		}
		return nil
	})
	n2 := "beta." + a.env.Zone
	if err := os.WriteFile(domains, []byte(n1+" www."+a.env.Zone+"\n"+n2+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "certificate for the line added to domains.txt", func() error {
		if _, ok := bundle(t, e.Client, n2); !ok {
			return fmt.Errorf("no bundle for %s", n2)
		}
		return nil
	})
	for _, n := range []string{n1, n2} {
		if got := orders(certState(t, e.Client, n)); got != 1 {
			t.Errorf("%s: %d orders by two stages, want 1", n, got)
		}
	}
}
