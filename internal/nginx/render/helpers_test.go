package render

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/portico/portico/internal/store"
)

const nginxBin = "/usr/sbin/nginx"

// selfSigned makes a certificate bundle for names with the given serial.
func selfSigned(t testing.TB, serial int64, names ...string) store.CertBundle {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return store.CertBundle{
		Primary:   names[0],
		Names:     names,
		Issuer:    store.IssuerLocal,
		CertPEM:   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})),
		Serial:    fmt.Sprintf("%x", serial),
		NotBefore: tmpl.NotBefore,
		NotAfter:  tmpl.NotAfter,
	}
}

// nginxTestConf runs `nginx -t` on conf under a generated main config in a
// temporary prefix and returns nginx's output and error.
func nginxTestConf(t testing.TB, conf []byte) (string, error) {
	t.Helper()
	dir := t.TempDir()
	inc := filepath.Join(dir, "portico.conf")
	if err := os.WriteFile(inc, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	mainPath := filepath.Join(dir, "nginx.conf")
	if err := (MainConf{Prefix: dir, Include: inc}).Install(mainPath); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginxBin, "-t", "-q", "-p", dir, "-c", mainPath, "-g", "daemon off;").CombinedOutput()
	return string(out), err
}

// hash keys the configs nginx -t already accepted: the stage's nginx.Hash,
// which this package's tests cannot import.
func hash(conf []byte) string {
	h := sha256.Sum256(conf)
	return hex.EncodeToString(h[:])
}
