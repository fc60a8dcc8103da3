// Package acme obtains certificates from an ACME CA by dns-01 or http-01
// with lego v5. The account lives in etcd, so every certs stage of an
// installation shares one account per (directory, email); DNS providers are
// dispatched per zone, and the challenge is chosen per name (challenge.go).
package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/acme/api"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/lego"

	"github.com/portico/portico/internal/store"
)

// ACME directories of Let's Encrypt.
const (
	LetsEncryptProduction = lego.DirectoryURLLetsEncrypt
	LetsEncryptStaging    = lego.DirectoryURLLetsEncryptStaging
)

// ErrNoRenewalInfo is returned (wrapped) by RenewalWindow when the CA offers
// no ACME Renewal Information (RFC 9773) for the certificate; the caller then
// renews on its own schedule.
var ErrNoRenewalInfo = errors.New("no ACME renewal information (ARI)")

// Config configures an Issuer.
type Config struct {
	// DirectoryURL is the ACME directory; "" means LetsEncryptProduction.
	// For staging pass LetsEncryptStaging.
	DirectoryURL string
	// Email is the account's contact; optional.
	Email string
	// EABKeyID and EABHMAC (base64url) bind the account to an external
	// account, as some CAs require; both or neither.
	EABKeyID, EABHMAC string
	// KeyType of certificate keys: ec256 (default), ec384, rsa2048, rsa3072
	// or rsa4096.
	KeyType string
	// CARoots is PEM of extra roots trusted, besides the system's, for the
	// directory's TLS (a private CA, Pebble).
	CARoots []byte
	// Providers maps a DNS zone to the provider that answers dns-01
	// challenges for names in it; the longest matching zone wins and "" is
	// the default for all other names. Build them with dnsproviders.New.
	Providers map[string]challenge.Provider
	// HTTP01 answers http-01 challenges (http01.Provider: tokens in etcd,
	// served by every nginx stage); nil turns http-01 off.
	HTTP01 challenge.Provider
	// Challenges overrides the choice of challenge per zone
	// (ParseChallenges; "" for every other zone): ChallengeAuto, ChallengeHTTP01
	// or ChallengeDNS01. Empty means auto everywhere: dns-01 for names
	// a DNS provider covers, http-01 for the rest.
	Challenges map[string]string
	// Resolvers are recursive nameservers ("host" or "host:port") that must
	// all serve the challenge record before the CA is asked to validate. If
	// empty, lego's check uses the process's resolvers (/etc/resolv.conf).
	Resolvers []string
	// PropagationTimeout bounds the wait for a challenge record to show up;
	// PollingInterval is the time between checks; SequenceInterval the wait
	// between two authorizations of a provider that solves one at a time
	// (dnsupdate). Zero keeps the largest of the providers' own values.
	PropagationTimeout, PollingInterval, SequenceInterval time.Duration
	// DisableAuthoritativeNSCheck skips the check of the zone's
	// authoritative nameservers (on port 53), e.g. for a private DNS.
	DisableAuthoritativeNSCheck bool
	// UserAgent is added to requests to the CA.
	UserAgent string
	// CertificateTimeout bounds the wait for the CA to issue after the order
	// is finalised; 0 means 30s.
	CertificateTimeout time.Duration
	// Keys locates the account record: Keys.ACMEAccount(AccountID(...)).
	Keys store.Keys
}

// Issuer obtains certificates from one ACME directory.
type Issuer struct {
	cfg       Config
	dir       string
	keyType   certcrypto.KeyType
	resolvers []string
	solver    challenge.ProviderTimeout // nil without DNS providers
	dnsZones  []string
	http      *http.Client
	kv        KV
	log       *slog.Logger

	mu         sync.Mutex
	lego       *lego.Client // set once the account is ready; no solver
	user       *user
	solving    map[solverSet]*lego.Client // one per set of solvers, made on demand
	accountURL string
}

// New checks cfg and returns an Issuer. It does no I/O: the account is
// loaded or registered on the first Obtain or RenewalWindow.
func New(cfg Config, kv KV, log *slog.Logger) (*Issuer, error) {
	if kv == nil {
		return nil, errors.New("acme: no etcd client")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := cfg.DirectoryURL
	if dir == "" {
		dir = LetsEncryptProduction
	}
	if u, err := url.Parse(dir); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("acme directory %q: not an http(s) URL", dir)
	}
	kt, err := ParseKeyType(cfg.KeyType)
	if err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	if (cfg.EABKeyID == "") != (cfg.EABHMAC == "") {
		return nil, errors.New("acme: external account binding needs both key id and HMAC")
	}
	if cfg.CertificateTimeout <= 0 {
		cfg.CertificateTimeout = 30 * time.Second
	}
	hc, err := httpClient(cfg.CARoots)
	if err != nil {
		return nil, fmt.Errorf("acme CA roots: %w", err)
	}
	var solver challenge.ProviderTimeout
	var zones []string
	if len(cfg.Providers) > 0 {
		if solver, err = newRouter(cfg.Providers, dispatchConfig{
			PropagationTimeout: cfg.PropagationTimeout,
			PollingInterval:    cfg.PollingInterval,
			SequenceInterval:   cfg.SequenceInterval,
		}); err != nil {
			return nil, fmt.Errorf("acme: %w", err)
		}
		for z := range cfg.Providers {
			zones = append(zones, normalise(z))
		}
	}
	if solver == nil && cfg.HTTP01 == nil {
		return nil, errors.New("acme: no challenge: give a DNS provider or an http-01 provider")
	}
	for z, c := range cfg.Challenges {
		if _, err := ParseChallenges([]string{z + "=" + c}); err != nil {
			return nil, fmt.Errorf("acme: %w", err)
		}
	}
	var resolvers []string
	for _, r := range cfg.Resolvers {
		if _, _, err := net.SplitHostPort(r); err != nil {
			r = net.JoinHostPort(r, "53")
		}
		resolvers = append(resolvers, r)
	}
	return &Issuer{cfg: cfg, dir: dir, keyType: kt, resolvers: resolvers, solver: solver, dnsZones: zones, http: hc, kv: kv, log: log}, nil
}

// DirectoryURL is the ACME directory the Issuer uses.
func (i *Issuer) DirectoryURL() string { return i.dir }

// Account returns the URL of the ACME account, registering it if needed.
func (i *Issuer) Account(ctx context.Context) (string, error) {
	if _, err := i.client(ctx); err != nil {
		return "", err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.accountURL, nil
}

// Obtain gets a certificate for names (the first is the primary), each
// name validated by the challenge ChooseChallenge picks. A name no
// challenge can validate fails the order before any request (ErrUnsolvable).
func (i *Issuer) Obtain(ctx context.Context, names []string) (store.CertBundle, error) {
	if len(names) == 0 {
		return store.CertBundle{}, errors.New("obtain: no names")
	}
	set, err := i.solvers(names)
	if err != nil {
		return store.CertBundle{}, fmt.Errorf("obtain %v: %w", names, err)
	}
	if g, ok := i.cfg.HTTP01.(interface {
		Guard(context.Context) (context.Context, func())
	}); ok && set.http {
		var done func()
		ctx, done = g.Guard(ctx)
		defer done()
	}
	cl, err := i.solvingClient(ctx, set)
	if err != nil {
		return store.CertBundle{}, fmt.Errorf("obtain %v: %w", names, err)
	}
	req := certificate.ObtainRequest{Domains: names, KeyType: i.keyType, Bundle: true}
	res, err := cl.Certificate.Obtain(ctx, req)
	if accountGone(err) {
		// Register the key again and retry once.
		i.mu.Lock()
		gone := i.accountURL
		i.mu.Unlock()
		i.log.Warn("acme account unknown to the CA, registering again", "account", gone, "directory", i.dir)
		if err := i.forgetRegistration(ctx, gone); err != nil {
			return store.CertBundle{}, fmt.Errorf("obtain %v: %w", names, err)
		}
		if cl, err = i.solvingClient(ctx, set); err != nil {
			return store.CertBundle{}, fmt.Errorf("obtain %v: %w", names, err)
		}
		res, err = cl.Certificate.Obtain(ctx, req)
	}
	if err != nil {
		return store.CertBundle{}, fmt.Errorf("obtain %v: %w", names, err)
	}
	b, err := newBundle(names, res.Certificate, res.PrivateKey)
	if err != nil {
		return store.CertBundle{}, fmt.Errorf("obtain %v: %w", names, err)
	}
	b.IssuerURL = i.dir
	i.log.Info("certificate obtained", "names", names, "serial", b.Serial, "not_after", b.NotAfter, "directory", i.dir)
	return b, nil
}

// RenewalWindow asks the CA when to renew b (ACME Renewal Information). The
// error wraps ErrNoRenewalInfo if the CA offers none or b is not from it.
func (i *Issuer) RenewalWindow(ctx context.Context, b store.CertBundle) (start, end time.Time, err error) {
	leaf, err := parseLeaf([]byte(b.CertPEM))
	if err != nil {
		return start, end, fmt.Errorf("renewal window of %s: %w", b.Primary, err)
	}
	if b.IssuerURL != "" && b.IssuerURL != i.dir {
		return start, end, fmt.Errorf("renewal window of %s: issued by %s, not %s: %w", b.Primary, b.IssuerURL, i.dir, ErrNoRenewalInfo)
	}
	cl, err := i.client(ctx)
	if err != nil {
		return start, end, fmt.Errorf("renewal window of %s: %w", b.Primary, err)
	}
	info, err := cl.Certificate.GetRenewalInfo(ctx, leaf)
	if errors.Is(err, api.ErrNoARI) {
		return start, end, fmt.Errorf("renewal window of %s at %s: %w", b.Primary, i.dir, ErrNoRenewalInfo)
	}
	if err != nil {
		return start, end, fmt.Errorf("renewal window of %s at %s: %w", b.Primary, i.dir, err)
	}
	return info.SuggestedWindow.Start, info.SuggestedWindow.End, nil
}

// setSolvers installs the solvers of set on a new lego client.
func (i *Issuer) setSolvers(cl *lego.Client, set solverSet) error {
	if set.http {
		if err := cl.Challenge.SetHTTP01Provider(i.cfg.HTTP01); err != nil {
			return fmt.Errorf("acme http-01 solver: %w", err)
		}
	}
	if !set.dns {
		return nil
	}
	var opts []dns01.ChallengeOption
	if i.cfg.DisableAuthoritativeNSCheck {
		opts = append(opts, dns01.DisableAuthoritativeNssPropagationRequirement())
	}
	if len(i.resolvers) > 0 {
		// Our own recursive check on i.resolvers: lego's uses a
		// process-wide resolver list.
		opts = append(opts, dns01.DisableRecursiveNSsPropagationRequirement(), dns01.WrapPreCheck(i.precheck))
	}
	if err := cl.Challenge.SetDNS01Provider(i.solver, opts...); err != nil {
		return fmt.Errorf("acme dns-01 solver: %w", err)
	}
	return nil
}

// precheck reports whether the challenge record has propagated.
func (i *Issuer) precheck(ctx context.Context, _, fqdn, value string, check dns01.PreCheckFunc) (bool, error) {
	if err := ctx.Err(); err != nil {
		return true, err // lego's wait ignores ctx: stop it here.
	}
	if err := txtPropagated(ctx, i.resolvers, fqdn, value); err != nil {
		return false, err
	}
	if i.cfg.DisableAuthoritativeNSCheck {
		return true, nil
	}
	return check(ctx, fqdn, value)
}

// httpClient trusts the system roots plus extra PEM roots.
func httpClient(roots []byte) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if len(roots) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(roots) {
			return nil, errors.New("no certificate in PEM")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Timeout: 2 * time.Minute, Transport: tr}, nil
}

// newBundle splits lego's PEM bundle into leaf and chain and reads the
// leaf's serial and validity.
func newBundle(names []string, certPEM, keyPEM []byte) (store.CertBundle, error) {
	var leaf, chain []byte
	var cert *x509.Certificate
	for rest := certPEM; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if cert == nil {
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return store.CertBundle{}, fmt.Errorf("leaf certificate: %w", err)
			}
			cert, leaf = c, pem.EncodeToMemory(blk)
			continue
		}
		chain = append(chain, pem.EncodeToMemory(blk)...)
	}
	if cert == nil {
		return store.CertBundle{}, errors.New("CA returned no certificate")
	}
	if len(keyPEM) == 0 {
		return store.CertBundle{}, errors.New("no private key")
	}
	return store.CertBundle{
		Primary:    names[0],
		Names:      append([]string(nil), names...),
		Issuer:     store.IssuerACME,
		CertPEM:    string(leaf),
		ChainPEM:   string(chain),
		KeyPEM:     string(keyPEM),
		Serial:     cert.SerialNumber.Text(16),
		NotBefore:  cert.NotBefore,
		NotAfter:   cert.NotAfter,
		ObtainedAt: time.Now(),
	}, nil
}

// parseLeaf parses the first certificate of PEM.
func parseLeaf(b []byte) (*x509.Certificate, error) {
	certs, err := certcrypto.ParsePEMBundle(b)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	return certs[0], nil
}

// SetLegoResolvers points lego's process-wide DNS client at resolvers
// ("host:port"). lego uses it to follow CNAMEs of challenge names, for its
// own propagation check when Config.Resolvers is empty, and in some
// providers to find a name's zone. It mutates process state: call it once
// from main, before any Issuer runs.
func SetLegoResolvers(resolvers []string) {
	dns01.SetDefaultClient(dns01.NewClient(&dns01.Options{RecursiveNameservers: resolvers}))
}
