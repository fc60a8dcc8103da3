package store

import "time"

// Issuer kinds recorded in CertBundle.Issuer.
const (
	IssuerACME  = "acme"
	IssuerLocal = "local"
)

// CertBundle is one certificate as the certs stage stores it under
// Keys.CertBundle(Primary). The nginx stage writes it out in the dehydrated
// layout: certs/<primary>/{cert,chain,fullchain,privkey}.pem.
type CertBundle struct {
	// Primary is the subject and the bundle's name; Names are all names the
	// certificate covers, Primary first.
	Primary string   `json:"primary"`
	Names   []string `json:"names"`
	// Issuer is IssuerACME or IssuerLocal; IssuerURL is the ACME directory
	// for IssuerACME.
	Issuer    string `json:"issuer"`
	IssuerURL string `json:"issuer_url,omitempty"`
	// CertPEM is the leaf; ChainPEM the intermediates; KeyPEM the private key.
	CertPEM  string `json:"cert_pem"`
	ChainPEM string `json:"chain_pem,omitempty"`
	KeyPEM   string `json:"key_pem"`
	// Serial is the leaf's serial number in hex.
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// ObtainedAt is when this bundle was stored.
	ObtainedAt time.Time `json:"obtained_at"`
}

// FullChain is the leaf followed by the intermediates, as nginx's
// ssl_certificate wants it.
func (b CertBundle) FullChain() string { return b.CertPEM + b.ChainPEM }

// WantedCert is one certificate the certs stage derived from the container
// records (or its domains file). The stage publishes the whole list, sorted
// by Primary, as a JSON array under Keys.CertsWanted().
type WantedCert struct {
	// Primary is the subject and the key of the bundle; Names are every name
	// to certify, Primary first, the rest sorted.
	Primary string   `json:"primary"`
	Names   []string `json:"names"`
	// Issuer is IssuerACME or IssuerLocal.
	Issuer string `json:"issuer"`
}

// CertState is the certs stage's bookkeeping for one certificate, under
// Keys.CertState(Primary). It is what `portico status` reports and what the
// retry, rate-limit and grace decisions read.
type CertState struct {
	Primary string `json:"primary"`
	// Names and Issuer are those of the last order attempted; a failure's
	// backoff applies only while the wanted names stay the same.
	Names  []string `json:"names,omitempty"`
	Issuer string   `json:"issuer,omitempty"`
	// LastError is the last failed order's error and LastErrorAt its time;
	// both clear on success.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Failures counts consecutive failed orders; RetryAt is the earliest
	// time the next one may start.
	Failures int       `json:"failures,omitempty"`
	RetryAt  time.Time `json:"retry_at,omitzero"`
	// FailedAuthz holds, per identifier, the times of failed authorizations
	// in the last hour; Orders holds, per name set (names sorted, joined by
	// a space), the times certificates were issued in the last week. They
	// feed the Let's Encrypt rate-limit guard.
	FailedAuthz map[string][]time.Time `json:"failed_authz,omitempty"`
	Orders      map[string][]time.Time `json:"orders,omitempty"`
	// NextRenewal is when the stored bundle is due for renewal.
	NextRenewal time.Time `json:"next_renewal,omitzero"`
	// UnusedSince is zero while some container (or the domains file) wants
	// the certificate; otherwise the time the stage first saw it unwanted.
	// After the grace period an unused certificate is no longer renewed.
	UnusedSince time.Time `json:"unused_since,omitzero"`
}
