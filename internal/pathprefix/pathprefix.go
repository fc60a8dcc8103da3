// Package pathprefix holds what a path prefix (portico.path, nginx-proxy's
// VIRTUAL_PATH) and its rewrite (portico.strip-path, VIRTUAL_DEST) mean: the
// strict parsing of the values, how a request path picks a prefix, and how
// the path sent upstream is built. It is pure; both nginx paths implement
// these rules (the static path with one location per prefix, the dynamic
// path in portico.lua), and their tests check them against this package.
//
// Matching follows nginx's prefix locations, nginx-proxy's VIRTUAL_PATH and
// Traefik's PathPrefix: a prefix matches any request path that starts with
// its bytes, so "/api" also matches "/apix"; end the prefix with "/" ("/api/")
// to match whole path segments only. The longest matching prefix wins. As
// nginx does for a prefix location ending in "/", a request for the prefix
// without its final slash ("/api" for "/api/") is redirected (301) to it
// (Match).
package pathprefix

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Root is the prefix that matches every path.
const Root = "/"

// MaxBytes bounds a prefix or a destination.
const MaxBytes = 256

// MaxPerHost bounds the distinct prefixes one host may have (each costs a
// comparison per request on the dynamic path).
const MaxPerHost = 64

// allowed reports whether c may appear in a prefix or destination: RFC 3986
// unreserved characters, "/" and the sub-delimiters that mean nothing to
// nginx's config syntax, its regexes' replacement strings or Lua patterns
// once quoted. Never: control bytes, space, quotes, "{};$#", "%" (nginx
// matches the decoded path; write the character itself), "?", "\", and
// non-ASCII.
func allowed(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~/!&()*+,=:@", c) >= 0
}

// Parse validates a path prefix and returns it unchanged: it starts with
// "/", holds only the characters above, no "//", no "." or ".." segment
// (nginx removes them from the request path, so such a prefix could never
// match) and is at most MaxBytes long. A final "/" is kept: it means
// "whole segments only". A regex (nginx-proxy allows "~^/..." locations) is
// refused with its own message.
func Parse(s string) (string, error) {
	if strings.HasPrefix(s, "~") {
		return "", errors.New("regular expressions are not supported; give a path prefix such as /api/ (it matches every path that starts with it)")
	}
	return check(s, "path prefix")
}

// ParseDest validates a VIRTUAL_DEST value: "" (off), or a path by the same
// rules as Parse.
func ParseDest(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	return check(s, "destination path")
}

func check(s, what string) (string, error) {
	switch {
	case s == "":
		return "", fmt.Errorf("empty %s", what)
	case len(s) > MaxBytes:
		return "", fmt.Errorf("%s is %d bytes, over the limit of %d", what, len(s), MaxBytes)
	case s[0] != '/':
		return "", fmt.Errorf("%s must start with /", what)
	}
	for i := 0; i < len(s); i++ {
		if !allowed(s[i]) {
			return "", fmt.Errorf("character %q is not allowed in a %s (allowed: letters, digits and -._~/!&()*+,=:@; write a percent-encoded character decoded)", s[i], what)
		}
	}
	if strings.Contains(s, "//") {
		return "", fmt.Errorf("%s holds an empty segment (//)", what)
	}
	for seg := range strings.SplitSeq(s, "/") {
		if seg == "." || seg == ".." {
			return "", fmt.Errorf("%s holds a %q segment", what, seg)
		}
	}
	return s, nil
}

// Sort orders prefixes as every lookup tries them: longest first, then by
// bytes, so that the first match is the longest.
func Sort(prefixes []string) {
	slices.SortFunc(prefixes, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
}

// Match finds the prefix a request path (nginx's normalized $uri) is
// routed by among prefixes sorted by Sort: the index of the longest one it
// starts with, or -1. redirect is set instead when the path is a prefix
// that ends in "/" without that slash, no longer prefix matched and the
// path is not itself a prefix: nginx answers such a request with a 301 to
// the path with the slash.
func Match(prefixes []string, uri string) (i int, redirect bool) {
	for i, p := range prefixes {
		if strings.HasPrefix(uri, p) {
			return i, false
		}
		if len(p) > 1 && p[len(p)-1] == '/' && uri == p[:len(p)-1] {
			// A prefix equal to the path itself, if any, comes next.
			if j := i + 1; j < len(prefixes) && prefixes[j] == uri {
				return j, false
			}
			return i, true
		}
	}
	return -1, false
}

// Upstream is the path sent upstream for a request path uri that prefix
// matched. strip removes the prefix (Traefik's StripPrefix): what is left,
// with a "/" added in front if it does not start with one ("/api/x" ->
// "/x", "/api" -> "/", "/apix" -> "/x"). Otherwise a non-empty dest
// replaces the prefix as it is (nginx-proxy's VIRTUAL_DEST, which is
// nginx's proxy_pass URI replacement: "/app1/" with dest "/" sends "/foo"
// for "/app1/foo", and "/app1" with dest "/" sends "//foo"). Otherwise the
// path is sent unchanged.
func Upstream(prefix string, strip bool, dest, uri string) string {
	rest := strings.TrimPrefix(uri, prefix)
	switch {
	case strip:
		if !strings.HasPrefix(rest, "/") {
			rest = "/" + rest
		}
		return rest
	case dest != "":
		return dest + rest
	}
	return uri
}

// RegexQuote quotes a validated prefix for a PCRE: the characters the
// allowed set shares with regex syntax get a backslash.
func RegexQuote(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if strings.IndexByte(".()*+", p[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(p[i])
	}
	return b.String()
}
