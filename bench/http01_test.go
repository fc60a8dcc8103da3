package bench

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/http01"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/acmetest"
	"github.com/portico/portico/internal/testenv/dockertest"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// h01Get is GET http://addr<path> with Host host, no redirects followed.
func h01Get(addr, host, path string) (int, string, error) {
	req, err := http.NewRequest("GET", "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	c := &http.Client{Timeout: 3 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(body), err
}

// pollUntil polls ok every millisecond until it holds or within passes,
// and returns the time it took.
func pollUntil(b *testing.B, what string, within time.Duration, ok func() bool) time.Duration {
	b.Helper()
	t0 := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !ok() {
		if time.Since(t0) > within {
			b.Fatalf("%s: not within %s", what, within)
		}
		<-tick.C
	}
	return time.Since(t0)
}

func token(b *testing.B) string {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		b.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(buf)
}

func stats(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("median %s p90 %s max %s (n=%d)", percentile(s, 0.5).Round(10*time.Microsecond),
		percentile(s, 0.9).Round(10*time.Microsecond), s[len(s)-1].Round(10*time.Microsecond), len(s))
}

// BenchmarkH01TokenToEveryProxy: two nginx stages on one etcd (a `portico
// run` and a `portico nginx`); the time from a challenge record written
// to both proxies answering it, against the reference of the same run: a
// container record written to both proxies routing it.
func BenchmarkH01TokenToEveryProxy(b *testing.B) {
	d := newDocker(b)
	network := d.Network(b, "h01")
	_, ip := backend(b, d, network, "web", map[string]string{"portico.enable": "false"})
	extra := strings.Fields(os.Getenv("PORTICO_BENCH_ARGS"))
	// A CA on a closed loopback port: orders fail at once and no request
	// leaves the machine; the wanted list (what a proxy serves challenges
	// for) is published all the same.
	closed := addr(freePort(b))
	r := startRun(b, d, network, "--acme-directory", "https://"+closed+"/dir", "--instance", "one-"+d.RunID)
	ep, err := store.ReadEndpoint(r.dataDir)
	if err != nil {
		b.Fatal(err)
	}
	httpB := addr(freePort(b))
	porticotest.Start(b, binary, nil, append([]string{"nginx", "--data-dir", b.TempDir(), "--etcd-endpoints", ep,
		"--http-addr", httpB, "--https-addr", "", "--network", network, "--instance", "two-" + d.RunID, "--log-level", "warn"}, extra...)...)
	proxies := []string{r.http, httpB}

	owned := "owned-" + d.RunID + ".example.org"
	putRecord(b, r, d.RunID, network, "owned", owned, ip, false)
	pollUntil(b, "owned name published", 30*time.Second, func() bool {
		resp, err := r.cli.Get(context.Background(), r.keys.CertsWanted())
		return err == nil && len(resp.Kvs) == 1 && strings.Contains(string(resp.Kvs[0].Value), owned)
	})
	const rounds = 50
	var routeT, tokenT []time.Duration
	for i := range rounds {
		host := fmt.Sprintf("r%03d-%s.test", i, d.RunID)
		t0 := time.Now()
		putRecord(b, r, d.RunID, network, fmt.Sprintf("r%03d", i), host, ip, true)
		for _, p := range proxies {
			pollUntil(b, host+" on "+p, 10*time.Second, func() bool { code, _, err := h01Get(p, host, "/"); return err == nil && code == 200 })
		}
		routeT = append(routeT, time.Since(t0))

		tok := token(b)
		ka := tok + "." + token(b)
		v, _ := json.Marshal(http01.Record{Token: tok, KeyAuth: ka, Domain: owned})
		t0 = time.Now()
		if _, err := r.cli.Put(context.Background(), r.keys.HTTP01Token(tok), string(v)); err != nil {
			b.Fatal(err)
		}
		for _, p := range proxies {
			pollUntil(b, "token on "+p, 10*time.Second, func() bool {
				code, body, err := h01Get(p, owned, http01.PathPrefix+tok)
				return err == nil && code == 200 && body == ka
			})
		}
		tokenT = append(tokenT, time.Since(t0))
		if _, err := r.cli.Delete(context.Background(), r.keys.HTTP01Token(tok)); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("H01 token stored -> both proxies answer: %s", stats(tokenT))
	b.Logf("H01 reference, record written -> both proxies route: %s", stats(routeT))
	slices.Sort(tokenT)
	slices.Sort(routeT)
	b.Logf("H01 ratio token/route (median): %.2f", float64(percentile(tokenT, 0.5))/float64(percentile(routeT, 0.5)))
}

// BenchmarkH01DockerRunToHTTPS: the time from `docker run` to a verified
// HTTPS answer when the certificate comes by http-01 from Pebble, against
// the reference of the same run: a name validated by dns-01 (RFC 2136 to
// BIND). One `portico run` does both: --acme-challenge sends the h01
// subzone to http-01.
func BenchmarkH01DockerRunToHTTPS(b *testing.B) {
	d := newDocker(b)
	network := d.Network(b, "h01tls")
	port := freePort(b)
	env := acmetest.Start(b, acmetest.Options{HTTPPort: port, AddressAll: true})
	caFile := filepath.Join(b.TempDir(), "minica.pem")
	if err := os.WriteFile(caFile, env.DirectoryCA, 0o600); err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(env.Root(b))
	roots.AppendCertsFromPEM(env.Intermediates(b))
	dataDir := b.TempDir()
	httpA, httpsA := addr(port), addr(freePort(b))
	args := []string{"run", "--data-dir", dataDir, "--http-addr", httpA, "--https-addr", httpsA, "--network", network,
		"--host", "bench-" + d.RunID, "--log-level", "warn", "--label-filter", d.LabelFilter(),
		"--acme-directory", env.DirectoryURL, "--acme-ca-roots", caFile,
		"--dns-provider", env.Zone + "=dnsupdate", "--dns-resolvers", env.DNSAddr, "--dns-skip-authoritative-check",
		"--dns-propagation-timeout", "10s", "--acme-challenge", "h01." + env.Zone + "=http-01"}
	args = append(args, strings.Fields(os.Getenv("PORTICO_BENCH_ARGS"))...)
	vars := []string{"DNSUPDATE_NAMESERVER=" + env.DNSAddr, "DNSUPDATE_TSIG_KEY=" + env.TSIGKey, "DNSUPDATE_TSIG_SECRET=" + env.TSIGSecret,
		"DNSUPDATE_TSIG_ALGORITHM=" + env.TSIGAlgorithm, "DNSUPDATE_ZONES=" + env.Zone, "DNSUPDATE_POLLING_INTERVAL=1",
		"DNSUPDATE_SEQUENCE_INTERVAL=1", "DNSUPDATE_PROPAGATION_TIMEOUT=10"}
	porticotest.Start(b, binary, vars, args...)
	porticotest.Eventually(b, 60*time.Second, "default 404", func() error {
		code, _, err := get(httpA, "unknown.invalid")
		if err == nil && code != 404 {
			err = fmt.Errorf("%d", code)
		}
		return err
	})
	verified := func(host, name string) bool {
		code, body, _, err := porticotest.GetTLS(httpsA, host, roots)
		return err == nil && code == 200 && strings.Contains(body, name)
	}
	const rounds = 5
	var h01, dns01 []time.Duration
	for i := range rounds {
		for _, kind := range []string{"http-01", "dns-01"} {
			host := fmt.Sprintf("r%d-%s.%s", i, d.RunID, env.Zone)
			if kind == "http-01" {
				host = fmt.Sprintf("r%d-%s.h01.%s", i, d.RunID, env.Zone)
			}
			name := fmt.Sprintf("%s%d", kind[:3], i)
			t0 := time.Now()
			d.Run(b, dockertest.RunOptions{Name: name, Network: network, Labels: map[string]string{"portico.vhost": host}})
			pollUntil(b, kind+" "+host, 120*time.Second, func() bool { return verified(host, d.Name(name)) })
			if kind == "http-01" {
				h01 = append(h01, time.Since(t0))
			} else {
				dns01 = append(dns01, time.Since(t0))
			}
		}
	}
	b.Logf("H01 docker run -> verified HTTPS, http-01: %s", stats(h01))
	b.Logf("H01 reference, dns-01 (RFC 2136, BIND): %s", stats(dns01))
	slices.Sort(h01)
	slices.Sort(dns01)
	b.Logf("H01 ratio http-01/dns-01 (median): %.2f", float64(percentile(h01, 0.5))/float64(percentile(dns01, 0.5)))
}
