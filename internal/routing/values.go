package routing

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"golang.org/x/net/idna"
)

// Value parsers. Each returns either a value built from constants and
// checked characters, or an error; no input byte is passed through
// unchecked.

// maxHSTS bounds portico.hsts max-age seconds (about 68 years).
const maxHSTS = math.MaxInt32

// maxRootBytes bounds a FastCGI document root.
const maxRootBytes = 255

// ValidRoot accepts a FastCGI document root: an absolute path of
// [A-Za-z0-9._-] segments separated by single slashes, no "." or ".."
// segment, no trailing slash (but "/" itself), at most 255 bytes. Nothing
// in it can end an nginx directive, expand a variable or break the
// dynamic table's fields.
func ValidRoot(s string) error {
	if s == "" || s[0] != '/' || len(s) > maxRootBytes {
		return fmt.Errorf("not an absolute path of at most %d bytes", maxRootBytes)
	}
	if s == "/" {
		return nil
	}
	for seg := range strings.SplitSeq(s[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return errors.New(`an empty, "." or ".." path segment (or a trailing slash)`)
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; !(isAlnum(c) || c == '.' || c == '_' || c == '-') {
				return errors.New("a path may hold only A-Z, a-z, 0-9, '.', '_', '-' and '/'")
			}
		}
	}
	return nil
}

// parseBool accepts true/false, 1/0 and yes/no, ASCII case-insensitive.
func parseBool(s string) (bool, error) {
	switch asciiLower(s) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	}
	return false, errors.New("not a boolean (true/false, 1/0, yes/no)")
}

// parseDecimal accepts plain ASCII decimal digits with no sign, space or
// leading zero ("0" itself is fine), up to max.
func parseDecimal(s string, max int) (int, bool) {
	if s == "" || len(s) > 10 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n <= max
}

// parsePort accepts a decimal port 1-65535 ("080", "+80", " 80", "0x50",
// "1e3" are all rejected).
func parsePort(s string) (int, error) {
	n, ok := parseDecimal(s, 65535)
	if !ok || n == 0 {
		return 0, errors.New("not a port: want a decimal number 1-65535 without sign, spaces or leading zeros")
	}
	return n, nil
}

// parseHSTS accepts true/yes (DefaultHSTSMaxAge), false/no/off (off), a
// decimal max-age in seconds (0 meaning off), or a full header value as
// nginx-proxy's HSTS takes it: directives separated by ";" with optional
// spaces, exactly one "max-age=<seconds>" and at most one each of
// "includeSubDomains" and "preload", in any order, names ASCII
// case-insensitive. Nothing else is accepted: no quoted max-age, no empty
// or unknown directive, no other byte. Digits are seconds, so "1" is
// max-age=1, not "true". A max-age of 0 is off whatever the directives.
func parseHSTS(s string) (HSTS, error) {
	switch asciiLower(s) {
	case "true", "yes":
		return HSTS{MaxAge: DefaultHSTSMaxAge}, nil
	case "false", "no", "off":
		return HSTS{}, nil
	}
	if n, ok := parseDecimal(s, maxHSTS); ok {
		return HSTS{MaxAge: n}, nil
	}
	h, err := parseHSTSHeader(s)
	if err != nil && strings.ContainsAny(s, "=;") {
		return HSTS{}, fmt.Errorf("not a valid header value: %w", err)
	}
	if err == nil {
		return h, nil
	}
	return HSTS{}, fmt.Errorf("not true, false, off, a max-age in seconds (0-%d) or a header value such as %q", maxHSTS, "max-age=31536000; includeSubDomains; preload")
}

// parseHSTSHeader parses the full header form of parseHSTS.
func parseHSTSHeader(s string) (HSTS, error) {
	var h HSTS
	age := false
	for d := range strings.SplitSeq(s, ";") {
		d = strings.Trim(d, " ")
		name, val, hasVal := strings.Cut(d, "=")
		switch l := asciiLower(name); {
		case l == "max-age" && hasVal:
			n, ok := parseDecimal(val, maxHSTS)
			if !ok {
				return HSTS{}, fmt.Errorf("max-age must be decimal seconds 0-%d without quotes, sign or leading zeros", maxHSTS)
			}
			if age {
				return HSTS{}, errors.New("max-age given twice")
			}
			h.MaxAge, age = n, true
		case l == "includesubdomains" && !hasVal:
			if h.IncludeSubDomains {
				return HSTS{}, errors.New("includeSubDomains given twice")
			}
			h.IncludeSubDomains = true
		case l == "preload" && !hasVal:
			if h.Preload {
				return HSTS{}, errors.New("preload given twice")
			}
			h.Preload = true
		default:
			return HSTS{}, errors.New(`a directive other than max-age=<seconds>, includeSubDomains and preload, separated by "; "`)
		}
	}
	if !age {
		return HSTS{}, errors.New("no max-age=<seconds> directive")
	}
	if h.MaxAge == 0 {
		return HSTS{}, nil
	}
	return h, nil
}

// keyword returns the allowed keyword s names, ASCII case-insensitively. The
// returned string is always one of allowed, never s itself.
func keyword(s string, allowed ...string) (string, error) {
	l := asciiLower(s)
	for _, a := range allowed {
		if l == a {
			return a, nil
		}
	}
	return "", fmt.Errorf("want one of %s", strings.Join(allowed, ", "))
}

// asciiLower lower-cases ASCII letters; any non-ASCII byte yields "" so that
// Unicode case folding (the Kelvin sign K folds to k) never matches a keyword.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return ""
		}
	}
	return strings.ToLower(s)
}

// validDockerName reports whether s matches Docker's container and network
// name rule [a-zA-Z0-9][a-zA-Z0-9_.-]* (at most 255 bytes).
func validDockerName(s string) bool {
	if s == "" || len(s) > 255 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// normalizeHost validates one vhost and returns it lower-case, in punycode,
// without a trailing dot. A wildcard is allowed only as the whole leftmost
// label ("*.example.com") or, as nginx's server_name allows, the whole
// rightmost one ("www.example.*": one or more labels after "www.example.";
// IsTrailingWildcard). The result always matches
// ^((\*\.)?N|N\.\*)$ with N = [a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*
// and is at most 253 bytes.
//
// Conversion uses idna.Lookup (UTS #46): it maps (lower-cases, folds
// fullwidth forms and dots), applies the Bidi and joiner rules, rejects
// non-LDH ASCII (STD3), hyphens in positions 3-4 of a non-punycode label, and
// validates existing xn-- labels. checkLDH then re-checks the ASCII result.
func normalizeHost(raw string) (string, error) {
	if len(raw) > 1024 {
		return "", errors.New("too long")
	}
	if strings.HasPrefix(raw, "~") {
		return "", errors.New(`regular expressions (nginx's "~" form) are not supported; use a leading wildcard such as "*.example.com", or list the names`)
	}
	name, wild := strings.CutPrefix(raw, "*.")
	tail := false
	if p, ok := strings.CutSuffix(name, ".*"); ok && !wild {
		name, tail = p, true
		if name == "" || strings.HasSuffix(name, ".") {
			return "", errors.New(`a trailing wildcard needs a name before ".*" ("www.example.*")`)
		}
	}
	if strings.Contains(name, "*") {
		return "", errors.New(`a wildcard is allowed only as the whole leftmost label ("*.example.com") or the whole rightmost one ("www.example.*"), not both`)
	}
	ascii := strings.TrimSuffix(name, ".")
	if !plainLDH(ascii) {
		var err error
		if ascii, err = idna.Lookup.ToASCII(name); err != nil {
			return "", fmt.Errorf("not a valid host name: %w", err)
		}
		ascii = strings.TrimSuffix(ascii, ".")
	}
	if err := checkLDH(ascii); err != nil {
		return "", err
	}
	if wild {
		ascii = "*." + ascii
	}
	if tail {
		ascii += ".*"
	}
	if len(ascii) > 253 {
		return "", fmt.Errorf("name is %d bytes, over 253", len(ascii))
	}
	return ascii, nil
}

// IsTrailingWildcard reports whether a normalized host is a trailing
// wildcard ("www.example.*"). No certificate can name one: such a host is
// served over plain HTTP only.
func IsTrailingWildcard(host string) bool { return strings.HasSuffix(host, ".*") }

// plainLDH reports whether s is already lower-case letters, digits, dots and
// single hyphens, which idna.Lookup would return unchanged; it lets the common
// case skip the IDNA machinery. checkLDH still applies.
func plainLDH(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return !strings.Contains(s, "--")
}

// checkLDH enforces RFC 1123 on an ASCII name: labels of 1-63 bytes of
// [a-z0-9-], not starting or ending with '-'. An all-numeric last label is
// rejected: top-level domains are never numeric, so that is an IP address,
// which cannot be certified.
func checkLDH(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	last := name[strings.LastIndexByte(name, '.')+1:]
	for l := range strings.SplitSeq(name, ".") {
		switch {
		case l == "":
			return errors.New("empty label")
		case len(l) > 63:
			return fmt.Errorf("label of %d bytes, over 63", len(l))
		case l[0] == '-' || l[len(l)-1] == '-':
			return errors.New("label starts or ends with '-'")
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return errors.New("label holds a character other than a-z, 0-9 and '-'")
			}
		}
	}
	if strings.Trim(last, "0123456789") == "" {
		return errors.New("numeric top-level label: IP addresses are not supported as vhosts")
	}
	return nil
}
