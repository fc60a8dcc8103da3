// Package redact removes credentials from text before Portico stores, logs or
// shows it. Errors from HTTP clients (lego's DNS providers, the ACME client,
// net/http) carry the request URL, and a provider's token often sits in that
// URL's userinfo or query string. String finds every URL in a text
// ("scheme://...") and drops its userinfo, query and fragment, keeping the
// scheme, host, port and path, which are what a person needs to debug.
//
// It is deliberately conservative: when it cannot tell whether something
// before an "@" is userinfo, it drops it. Text that is not a URL with a
// scheme (a bare "token=..." or an Authorization header) is not recognised.
package redact

import "strings"

// Marker replaces what was removed, so a reader knows something was there.
const Marker = "REDACTED"

// String returns s with every URL's userinfo replaced by Marker and its
// query and fragment replaced by "?"+Marker. Text outside URLs is unchanged.
func String(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	i := 0
	for {
		j := strings.Index(s[i:], "://")
		if j < 0 {
			b.WriteString(s[i:])
			return b.String()
		}
		sep := i + j
		start := schemeStart(s, i, sep)
		if start == sep { // no scheme before "://": not a URL
			b.WriteString(s[i : sep+3])
			i = sep + 3
			continue
		}
		b.WriteString(s[i:start])
		var closing byte
		if start > 0 {
			switch s[start-1] {
			case '"':
				closing = '"'
			case '\'':
				closing = '\''
			case '<':
				closing = '>'
			case '(':
				closing = ')'
			}
		}
		end := urlEnd(s, sep+3, closing)
		b.WriteString(s[start : sep+3])
		b.WriteString(clean(s[sep+3 : end]))
		i = end
	}
}

// Error is String(err.Error()), and "" for a nil error.
func Error(err error) string {
	if err == nil {
		return ""
	}
	return String(err.Error())
}

// schemeStart returns where the scheme ending at sep begins (sep itself when
// there is none): RFC 3986 ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ),
// not reaching back before from.
func schemeStart(s string, from, sep int) int {
	k := sep
	for k > from && isSchemeChar(s[k-1]) {
		k--
	}
	for k < sep && !isAlpha(s[k]) { // a scheme starts with a letter
		k++
	}
	return k
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isSchemeChar(c byte) bool {
	return isAlpha(c) || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'
}

// urlEnd returns where the URL starting after "://" at from ends. Inside
// quotes (closing != 0) it runs to the closing character or a line end;
// otherwise to white space, a quote, ')' or ']' (lego writes
// "[request: POST https://...]"), except the brackets of an IPv6 host.
func urlEnd(s string, from int, closing byte) int {
	inAuthority, inIPv6 := true, false
	for k := from; k < len(s); k++ {
		c := s[k]
		if c == '\n' || c == '\r' {
			return k
		}
		if closing != 0 {
			if c == closing && s[k-1] != '\\' { // %q escapes a quote inside
				return k
			}
			continue
		}
		switch c {
		case ' ', '\t', '\v', '\f', '"', '\'', '<', '>', '`', ')':
			return k
		case '/', '?', '#':
			inAuthority = false
		case '[':
			inIPv6 = inAuthority
		case ']':
			if !inIPv6 {
				return k
			}
			inIPv6 = false
		}
	}
	return len(s)
}

// clean redacts what follows "scheme://": userinfo, query and fragment.
func clean(rest string) string {
	tail := ""
	if q := strings.IndexAny(rest, "?#"); q >= 0 {
		rest, tail = rest[:q], "?"+Marker
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return rest + tail
	}
	authority := rest
	if slash := strings.IndexByte(rest, '/'); slash >= 0 {
		authority = rest[:slash]
	}
	switch {
	case strings.Contains(authority, "@"):
		// user:password@host: the userinfo ends at the authority's last "@".
		rest = Marker + rest[strings.LastIndexByte(authority, '@'):]
	case looksLikeUserPassword(authority):
		// "user:pa/ss@host": an unescaped "/" in a password; when in doubt,
		// drop everything up to the last "@".
		rest = Marker + rest[at:]
	}
	return rest + tail
}

// looksLikeUserPassword reports whether an authority without "@" is really
// "user:password-prefix": it has a ":" that is not followed by a port.
func looksLikeUserPassword(authority string) bool {
	if strings.HasPrefix(authority, "[") {
		return false // an IPv6 host
	}
	c := strings.LastIndexByte(authority, ':')
	if c < 0 {
		return false
	}
	port := authority[c+1:]
	if port == "" {
		return true
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return true
		}
	}
	return false
}
