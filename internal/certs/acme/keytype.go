package acme

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/go-acme/lego/v5/certcrypto"
)

// keyTypes maps the accepted Config.KeyType names to lego key types.
var keyTypes = map[string]certcrypto.KeyType{
	"ec256":   certcrypto.EC256,
	"ec384":   certcrypto.EC384,
	"rsa2048": certcrypto.RSA2048,
	"rsa3072": certcrypto.RSA3072,
	"rsa4096": certcrypto.RSA4096,
}

// ParseKeyType maps a certificate key type name (ec256, ec384, rsa2048,
// rsa3072, rsa4096; any case) to lego's; "" means ec256.
func ParseKeyType(s string) (certcrypto.KeyType, error) {
	n := strings.ToLower(strings.TrimSpace(s))
	if n == "" {
		return certcrypto.EC256, nil
	}
	kt, ok := keyTypes[n]
	if !ok {
		return "", fmt.Errorf("key type %q: want one of ec256, ec384, rsa2048, rsa3072, rsa4096", s)
	}
	return kt, nil
}

// AccountID is the id of the account of email at the directory: the hex
// SHA-256 of both, so one etcd key per (CA, email) pair.
func AccountID(directoryURL, email string) string {
	sum := sha256.Sum256([]byte(strings.TrimSpace(directoryURL) + "\n" + strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:16])
}
