package localca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/certs/localca"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
)

// rootOf reads the CA record from etcd: the root certificate and its key.
func rootOf(t *testing.T, e *storetest.Etcd, keys store.Keys) (localca.Record, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	resp, err := e.Client.Get(context.Background(), keys.LocalCA())
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("local CA record: %v", err)
	}
	var r localca.Record
	if err := store.Decode(keys.LocalCA(), resp.Kvs[0].Value, &r); err != nil {
		t.Fatal(err)
	}
	cb, _ := pem.Decode([]byte(r.CertPEM))
	kb, _ := pem.Decode([]byte(r.KeyPEM))
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return r, cert, key
}

// forge signs a leaf for dns names and ips with the root's own key,
// bypassing Obtain's checks: what a holder of the root key could mint.
func forge(t *testing.T, root *x509.Certificate, key *ecdsa.PrivateKey, dns []string, ips []net.IP) *x509.Certificate {
	t.Helper()
	lk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "forged"},
		DNSNames:     dns, IPAddresses: ips,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, &lk.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

func leafOf(t *testing.T, b store.CertBundle) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode([]byte(b.CertPEM))
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// TestRootNameConstraints: the root carries critical name constraints, so
// crypto/x509 refuses a leaf for a public name even when the root's key
// signed it, and accepts leaves for local names.
func TestRootNameConstraints(t *testing.T) {
	e := storetest.Start(t)
	keys := store.NewKeys("/t")
	ctx := context.Background()
	ca := localca.New(e.Client, keys, localca.Options{})
	good, err := ca.Obtain(ctx, []string{"app.test", "*.app.test", "x.localhost", "y.internal", "z.local"})
	if err != nil {
		t.Fatal(err)
	}
	_, root, key := rootOf(t, e, keys)
	if !root.PermittedDNSDomainsCritical || strings.Join(root.PermittedDNSDomains, " ") != "internal local localhost test" {
		t.Fatalf("root constraints: critical=%v permitted=%q", root.PermittedDNSDomainsCritical, root.PermittedDNSDomains)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	for _, n := range []string{"app.test", "w.app.test", "x.localhost", "y.internal", "z.local"} {
		if _, err := leafOf(t, good).Verify(x509.VerifyOptions{DNSName: n, Roots: pool}); err != nil {
			t.Errorf("local name %s: %v", n, err)
		}
	}

	for _, tc := range []struct {
		name string
		dns  []string
		ips  []net.IP
	}{
		{"public name", []string{"www.example.com"}, nil},
		{"public name beside a local one", []string{"app.test", "bank.example"}, nil},
		{"suffix lookalike", []string{"attest"}, nil},
		{"wildcard public", []string{"*.example.com"}, nil},
		{"ipv4", []string{"app.test"}, []net.IP{net.ParseIP("127.0.0.1")}},
		{"ipv6", []string{"app.test"}, []net.IP{net.ParseIP("::1")}},
	} {
		leaf := forge(t, root, key, tc.dns, tc.ips)
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool}); err == nil {
			t.Errorf("%s: a leaf for %q %v verified against the root", tc.name, tc.dns, tc.ips)
		} else if _, ok := err.(x509.CertificateInvalidError); !ok {
			t.Errorf("%s: unexpected error %v", tc.name, err)
		}
	}

	if _, err := ca.Obtain(ctx, []string{"www.example.com"}); err == nil || !strings.Contains(err.Error(), "--local-ca-domains") {
		t.Errorf("Obtain for a public name: %v", err)
	}
}

func TestConfiguredDomainsAndNeedsRotation(t *testing.T) {
	e := storetest.Start(t)
	keys := store.NewKeys("/t")
	ca := localca.New(e.Client, keys, localca.Options{Domains: []string{"Corp.Example.", "corp.example"}})
	b, err := ca.Obtain(context.Background(), []string{"intranet.corp.example", "app.test"})
	if err != nil {
		t.Fatal(err)
	}
	_, root, key := rootOf(t, e, keys)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	if _, err := leafOf(t, b).Verify(x509.VerifyOptions{DNSName: "intranet.corp.example", Roots: pool}); err != nil {
		t.Errorf("configured domain: %v", err)
	}
	if _, err := forge(t, root, key, []string{"corp.example.evil.com"}, nil).Verify(x509.VerifyOptions{Roots: pool}); err == nil {
		t.Error("a leaf outside the configured domain verified")
	}

	now := time.Now()
	permitted := localca.Permitted([]string{"corp.example"})
	ok := &x509.Certificate{PermittedDNSDomainsCritical: true, PermittedDNSDomains: permitted,
		ExcludedIPRanges: root.ExcludedIPRanges, NotAfter: now.Add(365 * 24 * time.Hour)}
	for _, tc := range []struct {
		name   string
		mod    func(c *x509.Certificate)
		rotate bool
	}{
		{"matching", func(*x509.Certificate) {}, false},
		{"same domains in another order", func(c *x509.Certificate) {
			c.PermittedDNSDomains = []string{"test", "corp.example", "local", "localhost", "internal"}
		}, false},
		{"unconstrained (made before constraints)", func(c *x509.Certificate) {
			c.PermittedDNSDomains, c.PermittedDNSDomainsCritical = nil, false
		}, true},
		{"not critical", func(c *x509.Certificate) { c.PermittedDNSDomainsCritical = false }, true},
		{"other domains", func(c *x509.Certificate) { c.PermittedDNSDomains = localca.LocalSuffixes() }, true},
		{"IPs not excluded", func(c *x509.Certificate) { c.ExcludedIPRanges = nil }, true},
		{"expiring", func(c *x509.Certificate) { c.NotAfter = now.Add(59 * 24 * time.Hour) }, true},
	} {
		c := *ok
		tc.mod(&c)
		if got := localca.NeedsRotation(&c, permitted, now, 60*24*time.Hour); (got != "") != tc.rotate {
			t.Errorf("%s: NeedsRotation = %q, want rotation %v", tc.name, got, tc.rotate)
		}
	}
}

// TestUnconstrainedRootIsReplaced: a root stored by an older version, with
// no name constraints, is replaced on first use; racing CAs agree on one
// replacement, which records the old root.
func TestUnconstrainedRootIsReplaced(t *testing.T) {
	e := storetest.Start(t)
	keys := store.NewKeys("/t")
	ctx := context.Background()
	old := PutUnconstrainedRoot(t, e, keys)

	cas := []*localca.CA{localca.New(e.Client, keys, localca.Options{}), localca.New(e.Client, keys, localca.Options{})}
	roots := make(chan string, len(cas))
	for _, ca := range cas {
		go func() {
			pem, err := ca.RootPEM(ctx)
			if err != nil {
				t.Error(err)
			}
			roots <- pem
		}()
	}
	a, b := <-roots, <-roots
	rec, root, _ := rootOf(t, e, keys)
	if a != b || a != rec.CertPEM || a == old.CertPEM {
		t.Fatalf("racing CAs disagree or kept the old root")
	}
	if !root.PermittedDNSDomainsCritical || rec.PreviousCertPEM != old.CertPEM {
		t.Errorf("new root: critical=%v, previous recorded=%v", root.PermittedDNSDomainsCritical, rec.PreviousCertPEM == old.CertPEM)
	}
	// A third CA, started later, keeps the new root.
	if again, err := localca.New(e.Client, keys, localca.Options{}).RootPEM(ctx); err != nil || again != a {
		t.Errorf("a later CA replaced the root again: %v", err)
	}
}
