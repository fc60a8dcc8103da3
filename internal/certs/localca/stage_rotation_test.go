package localca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"testing"
	"time"

	"github.com/portico/portico/internal/certs"
	"github.com/portico/portico/internal/certs/localca"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// TestStageRotatesUnconstrainedRootAndReissuesLeaves: an etcd written by a
// version without name constraints holds an unconstrained root and a leaf
// it signed. A certs stage starting on it replaces the root at once and
// re-issues the leaf under the new root; the container's record and the
// certificate's names are kept.
func TestStageRotatesUnconstrainedRootAndReissuesLeaves(t *testing.T) {
	e := storetest.Start(t)
	keys := store.NewKeys("/t")
	ctx := context.Background()
	old := PutUnconstrainedRoot(t, e, keys)
	oldLeaf := oldBundle(t, old, "app.test")
	if _, err := store.PutJSON(ctx, e.Client, keys.CertBundle("app.test"), oldLeaf); err != nil {
		t.Fatal(err)
	}
	c := store.Container{ID: "1", Name: "app", Host: "h1", State: "running",
		Labels: map[string]string{routing.LabelVhost: "app.test", routing.LabelPort: "80"}}
	if _, err := store.PutJSON(ctx, e.Client, keys.Container("h1", "1"), c); err != nil {
		t.Fatal(err)
	}

	s, err := certs.New(certs.Config{Keys: keys, Debounce: 10 * time.Millisecond}, e.Client, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
	})

	porticotest.Eventually(t, 20*time.Second, "root replaced", func() error {
		rec, root, _ := rootOf(t, e, keys)
		if rec.CertPEM == old.CertPEM || !root.PermittedDNSDomainsCritical {
			return errors.New("still the unconstrained root")
		}
		return nil
	})
	var b store.CertBundle
	porticotest.Eventually(t, 20*time.Second, "leaf re-issued under the new root", func() error {
		resp, err := e.Client.Get(ctx, keys.CertBundle("app.test"))
		if err != nil || len(resp.Kvs) == 0 {
			return errors.New("no bundle")
		}
		if err := store.Decode(keys.CertBundle("app.test"), resp.Kvs[0].Value, &b); err != nil {
			return err
		}
		if b.Serial == oldLeaf.Serial {
			return errors.New("still the old leaf")
		}
		return nil
	})
	rec, root, _ := rootOf(t, e, keys)
	if rec.PreviousCertPEM != old.CertPEM {
		t.Error("the new root does not record the one it replaced")
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	if _, err := leafOf(t, b).Verify(x509.VerifyOptions{DNSName: "app.test", Roots: pool}); err != nil {
		t.Errorf("re-issued leaf: %v", err)
	}
	if b.Issuer != store.IssuerLocal || len(b.Names) != 1 || b.Names[0] != "app.test" {
		t.Errorf("re-issued bundle: %+v", b)
	}
	if resp, err := e.Client.Get(ctx, keys.Container("h1", "1")); err != nil || len(resp.Kvs) != 1 {
		t.Errorf("container record lost: %v", err)
	}
}

// oldBundle is a leaf for name signed by the old root r, as the old local
// CA stored it.
func oldBundle(t *testing.T, r localca.Record, name string) store.CertBundle {
	t.Helper()
	cb, _ := pem.Decode([]byte(r.CertPEM))
	kb, _ := pem.Decode([]byte(r.KeyPEM))
	root, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	rootKey, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	lk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, &lk.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(lk)
	return store.CertBundle{
		Primary: name, Names: []string{name}, Issuer: store.IssuerLocal,
		CertPEM:   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:    string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})),
		Serial:    "7",
		NotBefore: tmpl.NotBefore.UTC(), NotAfter: tmpl.NotAfter.UTC(), ObtainedAt: now.UTC(),
	}
}
