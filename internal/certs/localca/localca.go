// Package localca is Portico's built-in certificate authority for names no
// public CA certifies (*.localhost, *.test, *.internal, *.local) and for
// setups without ACME. Its root, an ECDSA P-256 key and self-signed
// certificate, is created once and kept in etcd under Keys.LocalCA(), so
// every certs stage on one etcd issues under the same root. Whoever can read
// etcd can read the root key: etcd is Portico's trust boundary.
package localca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/store"
)

// Defaults for Options.
const (
	DefaultValidity     = 30 * 24 * time.Hour
	DefaultRootValidity = 10 * 365 * 24 * time.Hour
	DefaultName         = "Portico local CA"
)

// Options configure the local CA.
type Options struct {
	// Validity is a leaf certificate's lifetime; 0 means DefaultValidity
	// (30 days, so the stage renews it after 20).
	Validity time.Duration
	// RootValidity is the root's lifetime when it is created; 0 means
	// DefaultRootValidity (10 years).
	RootValidity time.Duration
	// Name is the root's common name when it is created; "" means DefaultName.
	Name string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// KV is the part of the etcd client the CA uses.
type KV interface {
	Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error)
	Txn(ctx context.Context) clientv3.Txn
}

// Record is the CA as stored under Keys.LocalCA().
type Record struct {
	CertPEM string    `json:"cert_pem"`
	KeyPEM  string    `json:"key_pem"`
	Created time.Time `json:"created"`
}

// CA issues leaf certificates under the root kept in etcd. It satisfies the
// certs stage's Issuer interface.
type CA struct {
	kv   KV
	keys store.Keys
	opts Options

	mu   sync.Mutex
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

// New returns a CA backed by kv. It does no I/O: the root is loaded, or
// created if etcd holds none, on first use.
func New(kv KV, keys store.Keys, opts Options) *CA {
	if opts.Validity <= 0 {
		opts.Validity = DefaultValidity
	}
	if opts.RootValidity <= 0 {
		opts.RootValidity = DefaultRootValidity
	}
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &CA{kv: kv, keys: keys, opts: opts}
}

// RootPEM returns the root certificate in PEM, creating the root if etcd
// holds none yet. Clients that should trust local certificates import it.
func (ca *CA) RootPEM(ctx context.Context) (string, error) {
	if err := ca.load(ctx); err != nil {
		return "", err
	}
	return ca.pem, nil
}

// Load returns the root certificate PEM stored in etcd, without creating
// one; ok is false when there is none yet. For `portico status` and the
// nginx stage.
func Load(ctx context.Context, kv KV, keys store.Keys) (certPEM string, ok bool, err error) {
	resp, err := kv.Get(ctx, keys.LocalCA())
	if err != nil {
		return "", false, fmt.Errorf("local CA %q: %w", keys.LocalCA(), err)
	}
	if len(resp.Kvs) == 0 {
		return "", false, nil
	}
	var r Record
	if err := store.Decode(keys.LocalCA(), resp.Kvs[0].Value, &r); err != nil {
		return "", false, fmt.Errorf("local CA: %w", err)
	}
	return r.CertPEM, true, nil
}

// load reads the root from etcd, creating it first if absent. Two stages
// racing to create it agree on one: the create is a transaction that only
// succeeds on an absent key, and both use what the key then holds.
func (ca *CA) load(ctx context.Context) error {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if ca.cert != nil {
		return nil
	}
	key := ca.keys.LocalCA()
	fresh, err := ca.newRoot()
	if err != nil {
		return err
	}
	val, err := store.Encode(fresh)
	if err != nil {
		return err
	}
	resp, err := ca.kv.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return fmt.Errorf("local CA %q: %w", key, err)
	}
	rec := fresh
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return fmt.Errorf("local CA %q: vanished while reading", key)
		}
		if err := store.Decode(key, kvs[0].Value, &rec); err != nil {
			return fmt.Errorf("local CA: %w", err)
		}
	}
	return ca.use(rec)
}

func (ca *CA) use(r Record) error {
	cb, _ := pem.Decode([]byte(r.CertPEM))
	kb, _ := pem.Decode([]byte(r.KeyPEM))
	if cb == nil || kb == nil {
		return errors.New("local CA: stored record holds no PEM certificate or key")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return fmt.Errorf("local CA certificate: %w", err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return fmt.Errorf("local CA key: %w", err)
	}
	ca.cert, ca.key, ca.pem = cert, key, r.CertPEM
	return nil
}

func (ca *CA) newRoot() (Record, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Record{}, fmt.Errorf("local CA key: %w", err)
	}
	now := ca.opts.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: ca.opts.Name, Organization: []string{"Portico"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(ca.opts.RootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Record{}, fmt.Errorf("local CA certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Record{}, fmt.Errorf("local CA key: %w", err)
	}
	return Record{
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})),
		Created: now,
	}, nil
}

// Obtain issues a leaf certificate for names (names[0] the subject) with a
// fresh ECDSA P-256 key. ChainPEM is empty: the root is the trust anchor
// clients import, not something the server sends.
func (ca *CA) Obtain(ctx context.Context, names []string) (store.CertBundle, error) {
	if len(names) == 0 {
		return store.CertBundle{}, errors.New("local CA: no names to certify")
	}
	if err := ca.load(ctx); err != nil {
		return store.CertBundle{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return store.CertBundle{}, fmt.Errorf("local CA: key for %q: %w", names[0], err)
	}
	now := ca.opts.Now()
	notAfter := now.Add(ca.opts.Validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	sn := serial()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return store.CertBundle{}, fmt.Errorf("local CA: certificate for %q: %w", names[0], err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return store.CertBundle{}, fmt.Errorf("local CA: certificate for %q: %w", names[0], err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return store.CertBundle{}, fmt.Errorf("local CA: key for %q: %w", names[0], err)
	}
	return store.CertBundle{
		Primary:    names[0],
		Names:      names,
		Issuer:     store.IssuerLocal,
		CertPEM:    string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:     string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})),
		Serial:     sn.Text(16),
		NotBefore:  leaf.NotBefore.UTC(),
		NotAfter:   leaf.NotAfter.UTC(),
		ObtainedAt: now.UTC(),
	}, nil
}

// serial is a random positive 128-bit serial number.
func serial() *big.Int {
	b := make([]byte, 16)
	rand.Read(b)
	b[0] &= 0x7f
	b[0] |= 0x01
	return new(big.Int).SetBytes(b)
}
