package siteopts

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Redirect is a site's redirect options (docs/labels.md, "Redirects").
type Redirect struct {
	// To is portico.redirect-to: the whole vhost answers with a redirect to
	// this absolute http or https URL (ParseRedirectTo). "" for none.
	To string
	// Code is portico.redirect-code, one of 301 (default), 302, 307, 308;
	// set only with To.
	Code int
	// KeepPath is portico.redirect-keep-path: the request's path and query
	// are appended to To (whose trailing "/" is dropped first).
	KeepPath bool
	// From are portico.redirect-from's names (validated host names, none a
	// vhost of the same container): routing turns each into a route of its
	// own whose Host is set.
	From []string
	// Host is set by routing on a redirect-from name's route only: every
	// request redirects to this host (the container's first vhost) with the
	// request's scheme, port, path and query, 301 for GET and HEAD and 308
	// (which keeps the method and body) for any other method.
	Host string
}

// Redirect codes portico.redirect-code accepts.
var redirectCodes = []int{301, 302, 307, 308}

// DefaultRedirectCode is portico.redirect-code's default.
const DefaultRedirectCode = 301

// MaxRedirectURLBytes bounds portico.redirect-to.
const MaxRedirectURLBytes = 2048

// ParseRedirectCode accepts 301, 302, 307 or 308.
func ParseRedirectCode(s string) (int, error) {
	for _, c := range redirectCodes {
		if s == strconv.Itoa(c) {
			return c, nil
		}
	}
	return 0, errors.New("want one of 301, 302, 307, 308")
}

// ParseRedirectTo validates an absolute http or https URL and returns it
// with its scheme and host lower-cased. The URL may hold only the
// characters RFC 3986 allows in a URL, but "$" (which nginx would read as a
// variable; write %24), and every "%" must start a %XX escape: no space,
// quote, backslash, brace, control or non-ASCII byte ever reaches the
// config or the table. No user:password@ part; at most MaxRedirectURLBytes
// bytes. With keepPath, the URL may have no query or fragment: the
// request's path and query are appended.
func ParseRedirectTo(s string, keepPath bool) (string, error) {
	if len(s) > MaxRedirectURLBytes {
		return "", fmt.Errorf("URL is %d bytes, over %d", len(s), MaxRedirectURLBytes)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '$':
			return "", errors.New(`"$" is not allowed (nginx reads it as a variable); write it as %24`)
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", errors.New(`"%" not followed by two hex digits`)
			}
		case !urlChar(c):
			return "", fmt.Errorf("character %q is not allowed in a URL (percent-encode it)", c)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return "", errors.New("not an absolute http:// or https:// URL")
	case u.Opaque != "" || u.Host == "" || !strings.HasPrefix(s[len(u.Scheme):], "://"):
		return "", errors.New("not an absolute http:// or https:// URL with a host")
	case u.User != nil:
		return "", errors.New("a user or password in the URL is not allowed")
	case keepPath && (u.RawQuery != "" || u.ForceQuery || strings.Contains(s, "#")):
		return "", errors.New("with portico.redirect-keep-path the URL may have no query or fragment: the request's are kept")
	}
	if err := checkURLHost(u); err != nil {
		return "", err
	}
	rest := s[len(u.Scheme)+3+len(u.Host):]
	if rest != "" && rest[0] != '/' && rest[0] != '?' && rest[0] != '#' {
		return "", errors.New("not an absolute http:// or https:// URL with a host")
	}
	return scheme + "://" + strings.ToLower(u.Host) + rest, nil
}

// checkURLHost: an LDH host name or a bracketed IPv6 address, with an
// optional decimal port.
func checkURLHost(u *url.URL) error {
	h, p := u.Hostname(), u.Port()
	if strings.HasSuffix(u.Host, ":") {
		return errors.New("empty port")
	}
	if p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || p[0] == '0' {
			return fmt.Errorf("port %q: want 1-65535", p)
		}
	}
	if strings.HasPrefix(u.Host, "[") {
		if strings.Trim(h, "0123456789abcdefABCDEF:.") != "" {
			return errors.New("not an IPv6 address in brackets")
		}
		return nil
	}
	if h == "" || len(h) > 253 {
		return errors.New("empty or over-long host")
	}
	for _, l := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("host %q is not a valid host name (use punycode for international names)", h)
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(isAlnum(c) || c == '-') {
				return fmt.Errorf("host %q is not a valid host name (use punycode for international names)", h)
			}
		}
	}
	return nil
}

// urlChar: RFC 3986 unreserved, gen-delims and sub-delims but "$"; "%" is
// checked apart.
func urlChar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("-._~:/?#[]@!&'()*+,;=", c) >= 0
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// Target is the redirect's Location before the request's path: To, with
// its trailing "/" dropped when the path is kept (the request's path starts
// with one).
func (r Redirect) Target() string {
	if r.KeepPath {
		return strings.TrimSuffix(r.To, "/")
	}
	return r.To
}

// StatusCode is Code, or DefaultRedirectCode.
func (r Redirect) StatusCode() int {
	if r.Code == 0 {
		return DefaultRedirectCode
	}
	return r.Code
}

// fields are the redirect's dynamic-table fields:
//
//	redirect=<code> <0|1 keep path> <target>
//	redirect-host=<host>
func (r Redirect) fields() []Field {
	var fs []Field
	if r.To != "" {
		keep := "0"
		if r.KeepPath {
			keep = "1"
		}
		fs = append(fs, Field{"redirect", strconv.Itoa(r.StatusCode()) + " " + keep + " " + r.Target()})
	}
	if r.Host != "" {
		fs = append(fs, Field{"redirect-host", r.Host})
	}
	return fs
}

// diff names the first redirect setting that differs from owner's.
func (r Redirect) diff(owner Redirect) (label, mine, theirs string) {
	switch {
	case r.Host != owner.Host:
		return LabelRedirectFrom, "redirect to " + orNone(r.Host), "redirect to " + orNone(owner.Host)
	case r.To != owner.To:
		return LabelRedirectTo, orNone(r.To), orNone(owner.To)
	case r.StatusCode() != owner.StatusCode() && r.To != "":
		return LabelRedirectCode, strconv.Itoa(r.StatusCode()), strconv.Itoa(owner.StatusCode())
	case r.KeepPath != owner.KeepPath:
		return LabelRedirectKeepPath, strconv.FormatBool(r.KeepPath), strconv.FormatBool(owner.KeepPath)
	case strings.Join(r.From, ",") != strings.Join(owner.From, ","):
		return LabelRedirectFrom, orNone(strings.Join(r.From, ",")), orNone(strings.Join(owner.From, ","))
	}
	return "", "", ""
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return strconv.Quote(s)
}
