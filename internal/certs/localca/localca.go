// Package localca is Portico's built-in certificate authority for names no
// public CA certifies (*.localhost, *.test, *.internal, *.local) and for
// setups without ACME. Its root, an ECDSA P-256 key and self-signed
// certificate, is created once and kept in etcd under Keys.LocalCA(), so
// every certs stage on one etcd issues under the same root. Whoever can read
// etcd can read the root key: etcd is Portico's trust boundary.
//
// The root carries critical name constraints: it can only vouch for names
// under LocalSuffixes and Options.Domains, and for no IP address, so a user
// who imports it trusts it for nothing else, even if its key leaks. A stored
// root whose constraints differ from the configured ones (a root made before
// constraints existed, or --local-ca-domains changed), or that is close to
// expiry, is replaced on first use; the certs stage then re-issues every leaf
// the old root signed (Signed reports false for them).
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
	"log/slog"
	"math/big"
	"net"
	"slices"
	"strings"
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

// LocalSuffixes are the domains the root always permits: no public CA
// certifies names under them. (certs.LocalSuffixes routes names to the local
// CA; the two lists are the same.)
func LocalSuffixes() []string { return []string{"localhost", "test", "internal", "local"} }

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
	// Domains are permitted besides LocalSuffixes (--local-ca-domains):
	// normalised names (lower case, ASCII); each permits itself and every
	// name under it.
	Domains []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log reports a root replacement; nil means silence.
	Log *slog.Logger
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
	// PreviousCertPEM is the root this one replaced, if any, for reference:
	// its key is not kept.
	PreviousCertPEM string `json:"previous_cert_pem,omitempty"`
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
	opts.Domains = Permitted(opts.Domains)
	return &CA{kv: kv, keys: keys, opts: opts}
}

// Permitted returns the root's permitted DNS domains for the configured
// extra domains: LocalSuffixes plus domains, lower-cased, without dots at
// either end, sorted and unique.
func Permitted(domains []string) []string {
	out := LocalSuffixes()
	for _, d := range domains {
		if d = strings.ToLower(strings.Trim(d, ".")); d != "" {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Allows reports whether the permitted domains cover name (a leading "*."
// label included): name is one of them or lies under one.
func Allows(permitted []string, name string) bool {
	name = strings.TrimPrefix(strings.ToLower(name), "*.")
	for _, d := range permitted {
		if name == d || strings.HasSuffix(name, "."+d) {
			return true
		}
	}
	return false
}

// NeedsRotation says why a stored root must be replaced, or "" when it can
// stay: it lacks critical name constraints, permits other domains than
// permitted, permits IP addresses, or expires within minLeft of now.
func NeedsRotation(root *x509.Certificate, permitted []string, now time.Time, minLeft time.Duration) string {
	got := slices.Clone(root.PermittedDNSDomains)
	slices.Sort(got)
	switch {
	case !root.PermittedDNSDomainsCritical || len(root.PermittedDNSDomains) == 0:
		return "the root has no critical name constraints"
	case !slices.Equal(slices.Compact(got), permitted):
		return fmt.Sprintf("the root permits %q, the configuration %q", root.PermittedDNSDomains, permitted)
	case len(root.ExcludedIPRanges) < 2:
		return "the root does not exclude IP addresses"
	case root.NotAfter.Sub(now) < minLeft:
		return fmt.Sprintf("the root expires at %s", root.NotAfter.UTC().Format(time.RFC3339))
	}
	return ""
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

// RootDER parses a root certificate PEM as Load returns it and gives the
// certificate's DER, refusing anything that is not one X.509 certificate.
func RootDER(certPEM string) ([]byte, error) {
	blk, _ := pem.Decode([]byte(certPEM))
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("local CA: stored root is not a PEM certificate")
	}
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		return nil, fmt.Errorf("local CA: stored root: %w", err)
	}
	return blk.Bytes, nil
}

// load reads the root from etcd, creating it first if absent, and replacing
// it when NeedsRotation says so. Two stages racing to create or replace it
// agree on one: the write is a transaction on the key's revision as read,
// and a stage that loses the race uses what the key then holds.
func (ca *CA) load(ctx context.Context) error {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if ca.cert != nil {
		return nil
	}
	key := ca.keys.LocalCA()
	for attempt := 0; ; attempt++ {
		resp, err := ca.kv.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("local CA %q: %w", key, err)
		}
		var rev int64 // 0: absent
		var old Record
		reason := "no root yet"
		if len(resp.Kvs) > 0 {
			rev = resp.Kvs[0].ModRevision
			if err := store.Decode(key, resp.Kvs[0].Value, &old); err != nil {
				return fmt.Errorf("local CA: %w", err)
			}
			cert, _, err := parse(old)
			if err != nil {
				return err
			}
			reason = NeedsRotation(cert, ca.opts.Domains, ca.opts.Now(), ca.minLeft())
			if reason == "" || attempt > 0 {
				// A root another stage just wrote is used as it is: stages
				// with different settings must not replace each other's
				// roots in a loop.
				return ca.use(old)
			}
		}
		fresh, err := ca.newRoot()
		if err != nil {
			return err
		}
		fresh.PreviousCertPEM = old.CertPEM
		val, err := store.Encode(fresh)
		if err != nil {
			return err
		}
		cmp := clientv3.Compare(clientv3.ModRevision(key), "=", rev)
		if rev == 0 {
			cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		}
		tr, err := ca.kv.Txn(ctx).If(cmp).Then(clientv3.OpPut(key, string(val))).Commit()
		if err != nil {
			return fmt.Errorf("local CA %q: %w", key, err)
		}
		if tr.Succeeded {
			if rev != 0 && ca.opts.Log != nil {
				ca.opts.Log.Warn("local CA root replaced; leaves it signed are re-issued; clients must import the new root",
					"reason", reason, "permitted", ca.opts.Domains)
			}
			return ca.use(fresh)
		}
		// Lost a race: read again and use the winner's root.
	}
}

// minLeft is how long a root must still be valid to be kept: two leaf
// lifetimes, so every leaf it signs lives its full term.
func (ca *CA) minLeft() time.Duration { return min(2*ca.opts.Validity, ca.opts.RootValidity/2) }

func parse(r Record) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode([]byte(r.CertPEM))
	kb, _ := pem.Decode([]byte(r.KeyPEM))
	if cb == nil || kb == nil {
		return nil, nil, errors.New("local CA: stored record holds no PEM certificate or key")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("local CA certificate: %w", err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("local CA key: %w", err)
	}
	return cert, key, nil
}

func (ca *CA) use(r Record) error {
	cert, key, err := parse(r)
	if err != nil {
		return err
	}
	ca.cert, ca.key, ca.pem = cert, key, r.CertPEM
	return nil
}

// Signed reports whether the current root signed b's leaf: false for a
// leaf of a replaced root, which the certs stage then re-issues.
func (ca *CA) Signed(ctx context.Context, b store.CertBundle) (bool, error) {
	if err := ca.load(ctx); err != nil {
		return false, err
	}
	blk, _ := pem.Decode([]byte(b.CertPEM))
	if blk == nil {
		return false, nil
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return false, nil
	}
	return leaf.CheckSignatureFrom(ca.cert) == nil, nil
}

// Prepare loads the root, creating or replacing it as load does; the certs
// stage calls it at start so that an unconstrained root is rotated at once.
func (ca *CA) Prepare(ctx context.Context) error { return ca.load(ctx) }

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
		// Critical name constraints: the root vouches only for these
		// domains and for no IP address.
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         ca.opts.Domains,
		ExcludedIPRanges: []*net.IPNet{
			{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
			{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)},
		},
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
	for _, n := range names {
		if !Allows(ca.opts.Domains, n) {
			return store.CertBundle{}, fmt.Errorf("local CA: name %q is outside the domains its root may certify (%s); add its domain to --local-ca-domains", n, strings.Join(ca.opts.Domains, ", "))
		}
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
