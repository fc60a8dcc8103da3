package e2e

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
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/http01"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/acmetest"
	"github.com/portico/portico/internal/testenv/dockertest"
)

// startHTTP01ACME starts Pebble and BIND with Pebble's http-01 port set to
// httpPort and every name of the zone on 127.0.0.1; the flags give portico
// the CA and no DNS provider at all.
func startHTTP01ACME(t *testing.T, httpPort int) *acmeSetup {
	t.Helper()
	a := &acmeSetup{env: acmetest.Start(t, acmetest.Options{HTTPPort: httpPort, AddressAll: true})}
	caFile := filepath.Join(t.TempDir(), "pebble-minica.pem")
	if err := os.WriteFile(caFile, a.env.DirectoryCA, 0o600); err != nil {
		t.Fatal(err)
	}
	a.roots = x509.NewCertPool()
	if !a.roots.AppendCertsFromPEM(a.env.Root(t)) {
		t.Fatal("pebble root: no certificate")
	}
	a.roots.AppendCertsFromPEM(a.env.Intermediates(t))
	a.flags = []string{"--acme-directory", a.env.DirectoryURL, "--acme-ca-roots", caFile}
	return a
}

// getPath is GET http://addr<path> with Host host.
func getACMEPath(addr, host, path string) (int, string, error) {
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
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b), err
}

// randomToken is a token of Let's Encrypt's form: 43 base64url characters.
func randomToken(t testing.TB) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// putToken writes a challenge record as the certs stage would (or as an
// attacker with write access to the key would), unvalidated.
func putToken(t testing.TB, cli *clientv3.Client, key string, r http01.Record) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, key, string(b)); err != nil {
		t.Fatal(err)
	}
}

// tokenWatch records every token key put under the prefix.
type tokenWatch struct {
	mu   sync.Mutex
	puts []string
}

func watchTokens(t *testing.T, cli *clientv3.Client, keys store.Keys) *tokenWatch {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := &tokenWatch{}
	ch := cli.Watch(ctx, keys.HTTP01Tokens(), clientv3.WithPrefix())
	go func() {
		for wr := range ch {
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypePut {
					w.mu.Lock()
					w.puts = append(w.puts, string(ev.Kv.Value))
					w.mu.Unlock()
				}
			}
		}
	}()
	return w
}

// forDomain counts the puts of tokens for domain.
func (w *tokenWatch) forDomain(domain string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, v := range w.puts {
		var r http01.Record
		if json.Unmarshal([]byte(v), &r) == nil && r.Domain == domain {
			n++
		}
	}
	return n
}

func tokensLeft(t *testing.T, cli *clientv3.Client, keys store.Keys) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, keys.HTTP01Tokens(), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		out = append(out, string(kv.Value))
	}
	return out
}

// TestHTTP01CertificateWithoutDNSProvider: with no DNS provider at all, a
// public name gets a certificate by http-01 that verifies against Pebble's
// root; the order's token is deleted once it succeeded, and once an order
// failed; a path under /.well-known/acme-challenge/ with a token Portico
// does not hold reaches the container.
func TestHTTP01CertificateWithoutDNSProvider(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"on", "off"} {
		t.Run("nginx-dynamic="+path, func(t *testing.T) {
			t.Parallel()
			http01WithoutDNSProvider(t, path)
		})
	}
}

func http01WithoutDNSProvider(t *testing.T, dynamic string) {
	d := dockertest.New(t)
	port := freePort(t)
	a := startHTTP01ACME(t, port)
	net := d.Network(t, "h01")
	dataDir := t.TempDir()
	p := &pipeline{dataDir: dataDir, http: addr(port), https: addr(freePort(t)), metrics: addr(freePort(t))}
	p.proc = start(t, nil, append([]string{"run", "--data-dir", dataDir, "--http-addr", p.http, "--https-addr", p.https,
		"--metrics-addr", p.metrics, "--network", net, "--host", "e2e-" + d.RunID, "--log-level", "debug",
		"--nginx-dynamic", dynamic, "--label-filter", dockertest.RunLabel + "=" + d.RunID}, a.flags...)...)
	waitDefault404(t, p.http)
	cli := storeClient(t, dataDir)
	keys := store.NewKeys(store.DefaultPrefix)
	w := watchTokens(t, cli, keys)

	host := "web-" + d.RunID + "." + a.env.Zone
	started := time.Now()
	d.Run(t, dockertest.RunOptions{Name: "web", Network: net, Labels: map[string]string{"portico.vhost": host, "portico.https": "both"}})
	var b store.CertBundle
	eventually(t, 90*time.Second, "HTTPS verifies against Pebble's root", func() error {
		var ok bool
		if b, ok = bundle(t, cli, host); !ok {
			return fmt.Errorf("no bundle for %s yet (state %+v)", host, certState(t, cli, host))
		}
		_, err := servedSerial(p.https, host, d.Name("web"), a.roots)
		return err
	})
	t.Logf("docker run -> verified HTTPS by http-01: %s (poll 20ms)", time.Since(started).Round(time.Millisecond))
	if b.Issuer != store.IssuerACME {
		t.Errorf("issuer %q", b.Issuer)
	}
	if n := w.forDomain(host); n == 0 {
		t.Error("no http-01 token was stored for the order")
	}
	eventually(t, 10*time.Second, "token deleted after the successful order", func() error {
		if left := tokensLeft(t, cli, keys); len(left) > 0 {
			return fmt.Errorf("left: %q", left)
		}
		return nil
	})

	// A token Portico does not hold goes to the container.
	path := http01.PathPrefix + randomToken(t)
	code, body, err := getACMEPath(p.http, host, path)
	if err != nil || code != 200 || !strings.Contains(body, "name="+d.Name("web")) || !strings.Contains(body, "path="+path) {
		t.Errorf("unheld token: %d %q %v, want the container's answer", code, body, err)
	}

	// A failed order (Pebble cannot resolve the name) deletes its token too.
	bad := "nowhere-" + d.RunID + ".unresolvable.example"
	d.Run(t, dockertest.RunOptions{Name: "bad", Network: net, Labels: map[string]string{"portico.vhost": bad}})
	eventually(t, 60*time.Second, "order for an unresolvable name fails", func() error {
		st := certState(t, cli, bad)
		if st.LastError == "" || w.forDomain(bad) == 0 {
			return fmt.Errorf("state %+v, %d tokens seen", st, w.forDomain(bad))
		}
		return nil
	})
	eventually(t, 10*time.Second, "token deleted after the failed order", func() error {
		if left := tokensLeft(t, cli, keys); len(left) > 0 {
			return fmt.Errorf("left: %q", left)
		}
		return nil
	})
	if st := certState(t, cli, bad); len(st.FailedAuthz[bad]) == 0 || st.RetryAt.IsZero() {
		t.Errorf("failed http-01 not counted against the budget and backoff: %+v", st)
	}
}

// TestHTTP01AnsweredByEveryProxy: two nginx stages on one etcd, Pebble
// reaching only one of them: a certificate ordered by the other's certs
// stage validates. Then: a token stored is answered by both within a
// second (measured), a container can never shadow a held token, and
// hostile records or labels never make either answer for a name Portico
// does not own.
func TestHTTP01AnsweredByEveryProxy(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	portA := freePort(t)
	a := startHTTP01ACME(t, portA) // Pebble reaches proxy A only
	net := d.Network(t, "h01two")

	// B: the whole pipeline, certs stage included, on ports Pebble never
	// tries.
	dataB := t.TempDir()
	b := &pipeline{dataDir: dataB, http: addr(freePort(t)), https: addr(freePort(t)), metrics: addr(freePort(t))}
	b.proc = start(t, nil, append([]string{"run", "--data-dir", dataB, "--http-addr", b.http, "--https-addr", b.https,
		"--metrics-addr", b.metrics, "--network", net, "--host", "e2e-" + d.RunID, "--instance", "b-" + d.RunID,
		"--label-filter", dockertest.RunLabel + "=" + d.RunID}, a.flags...)...)
	waitDefault404(t, b.http)
	ep, err := store.ReadEndpoint(dataB)
	if err != nil {
		t.Fatal(err)
	}
	// A: an nginx stage alone, on B's etcd.
	httpA := addr(portA)
	start(t, nil, "nginx", "--data-dir", t.TempDir(), "--etcd-endpoints", ep, "--http-addr", httpA,
		"--network", net, "--instance", "a-"+d.RunID)
	waitDefault404(t, httpA)

	cli := storeClient(t, dataB)
	keys := store.NewKeys(store.DefaultPrefix)
	host := "two-" + d.RunID + "." + a.env.Zone
	d.Run(t, dockertest.RunOptions{Name: "two", Network: net, Labels: map[string]string{"portico.vhost": host}})
	eventually(t, 90*time.Second, "certificate ordered by B, validated through A, served by B", func() error {
		if _, ok := bundle(t, cli, host); !ok {
			return fmt.Errorf("no bundle for %s yet (state %+v)", host, certState(t, cli, host))
		}
		_, err := servedSerial(b.https, host, d.Name("two"), a.roots)
		return err
	})

	// Token stored -> every proxy answers it. The site redirects HTTP to
	// HTTPS now: the challenge is answered before the redirect.
	var lat []time.Duration
	for range 20 {
		tok := randomToken(t)
		ka := tok + "." + randomToken(t)
		stored := time.Now()
		putToken(t, cli, keys.HTTP01Token(tok), http01.Record{Token: tok, KeyAuth: ka, Domain: host})
		for _, proxy := range []string{httpA, b.http} {
			check(t, 2*time.Second, "token answered by "+proxy, func() error {
				code, body, err := getACMEPath(proxy, host, http01.PathPrefix+tok)
				if err != nil || code != 200 || body != ka {
					return fmt.Errorf("%d %q %v", code, body, err)
				}
				return nil
			})
		}
		lat = append(lat, time.Since(stored))
		if _, err := cli.Delete(context.Background(), keys.HTTP01Token(tok)); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(lat)
	t.Logf("token stored -> both proxies answer: median %s max %s (n=%d, poll 20ms)",
		lat[len(lat)/2].Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond), len(lat))
	if lat[len(lat)-1] > time.Second {
		t.Errorf("slowest token took %s to reach every proxy, want within 1s", lat[len(lat)-1])
	}

	// Hostile input. A rejected label claims nothing; records for names
	// Portico does not own, under the wrong key, or with bad syntax are
	// never answered; a record answers only for its own Host.
	victim := "victim-" + d.RunID + "." + a.env.Zone
	d.Run(t, dockertest.RunOptions{Name: "hostile", Network: net, Labels: map[string]string{
		"portico.vhost": victim + "/.well-known/acme-challenge/x"}})
	held := randomToken(t)
	heldKA := held + "." + randomToken(t)
	notOwned, wrongKey, badKA := randomToken(t), randomToken(t), randomToken(t)
	putToken(t, cli, keys.HTTP01Token(held), http01.Record{Token: held, KeyAuth: heldKA, Domain: host})
	putToken(t, cli, keys.HTTP01Token(notOwned), http01.Record{Token: notOwned, KeyAuth: notOwned + "." + randomToken(t), Domain: victim})
	putToken(t, cli, keys.HTTP01Token(wrongKey), http01.Record{Token: randomToken(t), KeyAuth: wrongKey + "." + randomToken(t), Domain: host})
	putToken(t, cli, keys.HTTP01Token(badKA), http01.Record{Token: badKA, KeyAuth: "<script>alert(1)</script>", Domain: host})
	putToken(t, cli, keys.HTTP01Tokens()+"..%2F..%2Fetc", http01.Record{Token: "../../etc", KeyAuth: "x", Domain: host})
	for _, proxy := range []string{httpA, b.http} {
		// The container answers every path with its name: it cannot shadow
		// the held token.
		check(t, 2*time.Second, "held token answered by Portico on "+proxy, func() error {
			code, body, err := getACMEPath(proxy, host, http01.PathPrefix+held)
			if err != nil || code != 200 || body != heldKA {
				return fmt.Errorf("%d %q %v", code, body, err)
			}
			return nil
		})
		for _, c := range []struct{ name, host, token string }{
			{"record for a name no route owns", victim, notOwned},
			{"held token asked under another Host", victim, held},
			{"record under another token's key", host, wrongKey},
			{"record with a bad key authorization", host, badKA},
		} {
			code, body, err := getACMEPath(proxy, c.host, http01.PathPrefix+c.token)
			if err != nil || code == 200 && !strings.Contains(body, "name=") || strings.Contains(body, "<script>") {
				t.Errorf("%s on %s: %d %q %v: answered as a challenge", c.name, proxy, code, body, err)
			}
		}
	}
}
