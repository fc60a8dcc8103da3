package render

import "strings"

// CertRef is a certificate the nginx stage serves. Its files are also on
// disk under <CertDir>/<Primary>/, for people and other programs; nginx gets
// the PEM inline from the rendered config.
type CertRef struct {
	// Primary is the validated certificate name and its directory.
	Primary string
	// Names are the names the certificate covers; they are only compared,
	// never rendered.
	Names []string
	// Fingerprint is the hex SHA-256 of the full chain and key the stage
	// wrote. It is rendered as a comment so a renewed certificate changes
	// the config, which makes the stage reload nginx.
	Fingerprint string
	// FullChain and Key are the PEM the TLS server loads. Render checks
	// them with CheckCertPEM; the stage ran the same check, and checked that
	// they pair, before it made the CertRef.
	FullChain, Key string
	// Local is true for a certificate of the built-in local CA, which
	// browsers do not trust: portico.https=auto then serves both HTTP and
	// HTTPS instead of redirecting.
	Local bool
}

// CertFor picks the certificate for host: the first bundle (in the given
// order) that names host exactly, else the first whose wildcard "*.parent"
// covers host with exactly one label. A wildcard host ("*.example.com") only
// matches a bundle naming that same wildcard.
func CertFor(host string, bundles []CertRef) (CertRef, bool) {
	for _, b := range bundles {
		for _, n := range b.Names {
			if strings.EqualFold(n, host) {
				return b, true
			}
		}
	}
	if strings.HasPrefix(host, "*.") {
		return CertRef{}, false
	}
	_, parent, ok := strings.Cut(host, ".")
	if !ok || parent == "" {
		return CertRef{}, false
	}
	for _, b := range bundles {
		for _, n := range b.Names {
			if strings.EqualFold(n, "*."+parent) {
				return b, true
			}
		}
	}
	return CertRef{}, false
}
