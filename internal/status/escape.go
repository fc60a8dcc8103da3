package status

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Escape makes a string from etcd safe to print on a terminal: control
// characters (C0 including tab and newline, DEL, C1), Unicode format
// characters (bidi overrides and isolates, zero-width characters, the BOM),
// line and paragraph separators, and invalid UTF-8 are written as Go escapes
// (\x1b, \n, \u202e). Backslashes are kept as they are: the output is for a
// person, not for parsing.
func Escape(s string) string {
	clean := true
	for _, r := range s {
		if unsafeRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && unsafeRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r) && r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unsafeRune reports whether r must not reach a terminal raw. RuneError
// stands for invalid UTF-8 (a literal U+FFFD is escaped too, harmlessly).
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || r == utf8.RuneError
}

// escapeAll escapes each string of ss.
func escapeAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = Escape(s)
	}
	return out
}

// escapeJSON rewrites what encoding/json leaves raw inside strings but a
// terminal interprets: DEL, C1 controls, format characters (bidi overrides)
// and U+FFFD, as \u escapes. encoding/json already escapes C0 (as \u001b),
// U+2028 and U+2029, and replaces invalid UTF-8 with U+FFFD. These runes
// can only occur inside JSON strings, so the result is the same JSON value.
func escapeJSON(b []byte) []byte {
	s := string(b)
	clean := true
	for _, r := range s {
		if r >= 0x7f && unsafeRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return b
	}
	var out strings.Builder
	for _, r := range s {
		if r >= 0x7f && unsafeRune(r) {
			if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
				fmt.Fprintf(&out, `\u%04x\u%04x`, r1, r2)
			} else {
				fmt.Fprintf(&out, `\u%04x`, r)
			}
			continue
		}
		out.WriteRune(r)
	}
	return []byte(out.String())
}
