package render

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Limits on a certificate bundle. Let's Encrypt chains hold 2-3
// certificates of 1-2 KB; an RSA-8192 key is 6.3 KB of PEM.
const (
	maxChainBytes = 64 << 10
	maxKeyBytes   = 16 << 10
	MaxChainCerts = 10
)

// CheckCertPEM is the renderer's check of a certificate's PEM, and the
// certificate stage runs the same function before it accepts a bundle, so
// a bundle the stage accepts never fails the render (which would hold back
// every later change). It accepts only canonical PEM, exactly as Go,
// OpenSSL and lego write it: blocks one after the other, no text or blank
// line between or around them, LF line ends, 64-column base64, no headers.
// That is also what makes OpenSSL (which nginx uses per handshake) read the
// same blocks Go's checks read. The chain must be 1 to MaxChainCerts
// CERTIFICATE blocks; the key one private key block, optionally after EC
// PARAMETERS.
func CheckCertPEM(fullchain, key string) error {
	if len(fullchain) > maxChainBytes {
		return fmt.Errorf("chain: %d bytes, more than the %d allowed", len(fullchain), maxChainBytes)
	}
	if len(key) > maxKeyBytes {
		return fmt.Errorf("key: %d bytes, more than the %d allowed", len(key), maxKeyBytes)
	}
	certs, err := canonicalBlocks(fullchain)
	if err != nil {
		return fmt.Errorf("chain: %w", err)
	}
	if len(certs) > MaxChainCerts {
		return fmt.Errorf("chain: %d certificates, more than the %d allowed", len(certs), MaxChainCerts)
	}
	for i, b := range certs {
		if b.Type != "CERTIFICATE" {
			return fmt.Errorf("chain: block %d is %q, not CERTIFICATE", i+1, b.Type)
		}
	}
	keys, err := canonicalBlocks(key)
	if err != nil {
		return fmt.Errorf("key: %w", err)
	}
	if len(keys) == 2 && keys[0].Type == "EC PARAMETERS" {
		keys = keys[1:]
	}
	if len(keys) != 1 {
		return fmt.Errorf("key: %d PEM blocks, want one private key", len(keys))
	}
	switch keys[0].Type {
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
	default:
		return fmt.Errorf("key: block is %q, want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY", keys[0].Type)
	}
	return nil
}

// canonicalBlocks decodes s, which must be canonical PEM (see
// CheckCertPEM), and says where it is not.
func canonicalBlocks(s string) ([]*pem.Block, error) {
	if i := strings.IndexByte(s, '\r'); i >= 0 {
		return nil, fmt.Errorf("line %d ends in CR (CRLF line ends)", lineAt(s, i))
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return !pemByte(r) }); i >= 0 {
		return nil, fmt.Errorf("line %d: byte %q is not allowed in PEM", lineAt(s, i), s[i])
	}
	var blocks []*pem.Block
	rest := s
	for len(rest) > 0 {
		off := len(s) - len(rest)
		if !strings.HasPrefix(rest, "-----BEGIN ") {
			if rest[0] == '\n' {
				return nil, fmt.Errorf("line %d is blank", lineAt(s, off))
			}
			return nil, fmt.Errorf("line %d: text outside a PEM block", lineAt(s, off))
		}
		b, r := pem.Decode([]byte(rest))
		if b == nil {
			return nil, fmt.Errorf("line %d: PEM block does not decode", lineAt(s, off))
		}
		n := len(rest) - len(r)
		if string(pem.EncodeToMemory(b)) != rest[:n] {
			return nil, fmt.Errorf("line %d: %s block is not canonical PEM (64-column base64, no headers, no blank lines, one LF after the END line)",
				lineAt(s, off), b.Type)
		}
		blocks = append(blocks, b)
		rest = string(r)
	}
	if len(blocks) == 0 {
		return nil, errors.New("no PEM block")
	}
	return blocks, nil
}

func lineAt(s string, off int) int { return strings.Count(s[:off], "\n") + 1 }

// CheckBundle is everything the stage checks before it accepts a bundle:
// the renderer's own CheckCertPEM, then that the key block holds the kind
// of key its label says (OpenSSL trusts the label, Go does not), of a type
// nginx serves, and that chain and key pair.
func CheckBundle(fullchain, key string) error {
	if err := CheckCertPEM(fullchain, key); err != nil {
		return err
	}
	kb, _ := pem.Decode([]byte(key))
	if kb.Type == "EC PARAMETERS" {
		kb, _ = pem.Decode([]byte(key[len(pem.EncodeToMemory(kb)):]))
	}
	var (
		k   any
		err error
	)
	switch kb.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(kb.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(kb.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
	}
	if err != nil {
		return fmt.Errorf("key: %s block: %w", kb.Type, err)
	}
	switch k.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
	default:
		return fmt.Errorf("key: %T is not an RSA, ECDSA or Ed25519 key", k)
	}
	if _, err := tls.X509KeyPair([]byte(fullchain), []byte(key)); err != nil {
		return err
	}
	return nil
}
