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
