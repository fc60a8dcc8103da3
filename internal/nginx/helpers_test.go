package nginx

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"testing"
	"time"

	"github.com/portico/portico/internal/routing"
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

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

func route(host string, ups ...string) routing.Route {
	return routing.Route{Host: host, Protocol: routing.ProtoHTTP, HTTPS: routing.HTTPSRedirect, Upstreams: ups, Containers: []string{"c-" + host}}
}
