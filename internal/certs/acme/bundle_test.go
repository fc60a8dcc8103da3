package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/store"
)

func selfSigned(t *testing.T, cn string, serial int64) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Unix(1_700_000_000, 0),
		NotAfter:     time.Unix(1_700_000_000, 0).Add(90 * 24 * time.Hour),
		DNSNames:     []string{cn},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestNewBundleSplitsLeafAndChain(t *testing.T) {
	leaf, mid1, mid2 := selfSigned(t, "a.example", 0xabc), selfSigned(t, "mid1", 2), selfSigned(t, "mid2", 3)
	all := append(append(append([]byte{}, leaf...), mid1...), mid2...)
	b, err := newBundle([]string{"a.example", "b.example"}, all, []byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	if err != nil {
		t.Fatal(err)
	}
	if b.CertPEM != string(leaf) || b.ChainPEM != string(mid1)+string(mid2) {
		t.Errorf("leaf/chain split wrong")
	}
	if b.Serial != "abc" || b.Primary != "a.example" || len(b.Names) != 2 || b.Issuer != store.IssuerACME {
		t.Errorf("fields: %+v", b)
	}
	if !b.NotBefore.Equal(time.Unix(1_700_000_000, 0)) || b.NotAfter.Sub(b.NotBefore) != 90*24*time.Hour {
		t.Errorf("validity: %v %v", b.NotBefore, b.NotAfter)
	}
	if _, err := newBundle([]string{"a"}, []byte("junk"), []byte("k")); err == nil || !strings.Contains(err.Error(), "no certificate") {
		t.Errorf("junk: %v", err)
	}
	if _, err := newBundle([]string{"a"}, leaf, nil); err == nil {
		t.Error("no key: want error")
	}
}
