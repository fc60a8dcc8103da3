// Package http01 keeps ACME http-01 challenges as data (docs/acme.md). The
// certs stage stores each pending key authorization in etcd, leased, with
// Provider (lego's challenge.Provider); every nginx stage reads them and
// serves /.well-known/acme-challenge/<token> on its HTTP listeners, so
// whichever proxy the CA reaches answers. This file holds the record, its
// strict validation, and Select, the pure choice of what a proxy serves.
package http01

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// PathPrefix is the URL path under which challenges are answered.
const PathPrefix = "/.well-known/acme-challenge/"

// Bounds of what is stored and served.
const (
	// MinTokenLen and MaxTokenLen bound a token: RFC 8555 asks for at
	// least 128 bits of entropy (22 base64url characters); Let's Encrypt
	// and Pebble send 43.
	MinTokenLen, MaxTokenLen = 22, 128
	// ThumbprintLen is the base64url SHA-256 JWK thumbprint of a key
	// authorization ("<token>.<thumbprint>").
	ThumbprintLen = 43
	// MaxTokens is the most tokens a proxy serves at once; further ones
	// (sorted by token) are refused with a problem. Orders run a few at a
	// time (certs.DefaultWorkers), each with at most 100 names.
	MaxTokens = 1000
	// MaxRecordBytes bounds a stored record.
	MaxRecordBytes = 1024
)

// Record is one pending challenge, stored under Keys.HTTP01Token(Token).
type Record struct {
	// Token is the challenge's token, the last segment of the URL path.
	Token string `json:"token"`
	// KeyAuth is the body to answer with: "<token>.<thumbprint>".
	KeyAuth string `json:"key_authorization"`
	// Domain is the one name the challenge is answered for: a request for
	// the token with another Host gets what any other path gets.
	Domain string `json:"domain"`
}

// Validate checks every field strictly; its error names the field.
func (r Record) Validate() error {
	if err := ValidToken(r.Token); err != nil {
		return err
	}
	if err := ValidKeyAuth(r.Token, r.KeyAuth); err != nil {
		return err
	}
	return ValidDomain(r.Domain)
}

// ValidToken accepts MinTokenLen to MaxTokenLen base64url characters, no
// padding (RFC 8555 8.3).
func ValidToken(t string) error {
	if len(t) < MinTokenLen || len(t) > MaxTokenLen {
		return fmt.Errorf("token %.40q: length %d, want %d to %d", t, len(t), MinTokenLen, MaxTokenLen)
	}
	if !base64url(t) {
		return fmt.Errorf("token %.40q: not base64url (A-Z a-z 0-9 - _)", t)
	}
	return nil
}

// ValidKeyAuth accepts exactly "<token>.<43 base64url characters>".
func ValidKeyAuth(token, ka string) error {
	thumb, ok := strings.CutPrefix(ka, token+".")
	if !ok {
		return fmt.Errorf("key authorization %.60q: does not start with its token and a dot", ka)
	}
	if len(thumb) != ThumbprintLen || !base64url(thumb) {
		return fmt.Errorf("key authorization %.60q: thumbprint is not %d base64url characters", ka, ThumbprintLen)
	}
	return nil
}

// ValidDomain accepts a lower-case DNS name in ASCII: labels of 1 to 63
// letters, digits and inner hyphens, at most 253 bytes, no wildcard (http-01
// cannot validate one) and no trailing dot.
func ValidDomain(d string) error {
	if d == "" || len(d) > 253 {
		return fmt.Errorf("domain %.40q: length must be 1 to 253 bytes", d)
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("domain %.80q: label %.70q is not 1 to 63 characters without a hyphen at either end", d, l)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("domain %.80q: character %q not allowed (lower-case letters, digits, '-')", d, c)
			}
		}
	}
	return nil
}

func base64url(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Encode is the stored form of r, after validation.
func (r Record) Encode() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(r)
}

// Decode parses and validates a stored record; token is its key's last
// segment, which the record must name.
func Decode(token string, value []byte) (Record, error) {
	if len(value) > MaxRecordBytes {
		return Record{}, fmt.Errorf("http-01 record %.40q: %d bytes, more than %d", token, len(value), MaxRecordBytes)
	}
	var r Record
	if err := json.Unmarshal(value, &r); err != nil {
		return Record{}, fmt.Errorf("http-01 record %.40q: %w", token, err)
	}
	if r.Token != token {
		return Record{}, fmt.Errorf("http-01 record %.40q: names token %.40q, not its key's", token, r.Token)
	}
	if err := r.Validate(); err != nil {
		return Record{}, fmt.Errorf("http-01 record %.40q: %w", token, err)
	}
	return r, nil
}

// Stored is one key's value as a proxy reads it: the token is the key's
// last segment.
type Stored struct {
	Token string
	Value []byte
}

// Select returns the challenges a proxy serves, sorted by token: each
// stored record that is valid and whose domain Portico wants a certificate
// for from an ACME CA (owned: a name of certs/wanted, which only the certs
// stage writes, derived from the routes containers won). Everything else is
// a problem naming the token, and is not served: a record for a name
// Portico does not own never makes a proxy answer for that name. At most
// MaxTokens are served.
func Select(stored []Stored, owned map[string]bool) ([]Record, []error) {
	var out []Record
	var problems []error
	sorted := slices.Clone(stored)
	slices.SortFunc(sorted, func(a, b Stored) int { return strings.Compare(a.Token, b.Token) })
	for _, s := range sorted {
		r, err := Decode(s.Token, s.Value)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if !owned[r.Domain] {
			problems = append(problems, fmt.Errorf("http-01 record %.40q: domain %q is not a name Portico certifies by ACME; not served", r.Token, r.Domain))
			continue
		}
		if len(out) == MaxTokens {
			problems = append(problems, fmt.Errorf("http-01 record %.40q: more than %d pending challenges; not served", r.Token, MaxTokens))
			continue
		}
		out = append(out, r)
	}
	return out, problems
}

// Tokens lists the tokens of rs, in order.
func Tokens(rs []Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Token
	}
	return out
}
