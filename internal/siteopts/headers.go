package siteopts

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Headers are a site's header options (docs/labels.md, "Headers").
type Headers struct {
	// Security is portico.security-headers=true: the SecurityPreset
	// response headers, each sent only when the upstream did not send that
	// header itself.
	Security bool
	// Response are portico.response-header.<Name>: each replaces the
	// upstream's header of that name on every response (also Portico's own
	// redirects and errors); an empty Value removes the upstream's header.
	// Sorted by lower-case name, names unique case-insensitively.
	Response []Header
	// Request are portico.request-header.<Name>: each replaces the client's
	// header of that name on the request sent upstream; an empty Value
	// removes the client's header. Sorted and unique as Response.
	Request []Header
}

// Header is one header option. Name passed ParseHeaderName; Value passed
// ParseHeaderValue.
type Header struct {
	Name, Value string
}

// SecurityPreset is what portico.security-headers=true sends (HSTS aside:
// portico.hsts). Each header is added only when the upstream's response
// has none of that name, so an application that sets its own policy keeps
// it.
var SecurityPreset = []Header{
	{"X-Content-Type-Options", "nosniff"},
	{"Referrer-Policy", "strict-origin-when-cross-origin"},
	{"X-Frame-Options", "SAMEORIGIN"},
}

// Bounds of the header options.
const (
	MaxHeaders          = 16   // per kind (response, request) per container
	MaxHeaderNameBytes  = 64   // a header name
	MaxHeaderValueBytes = 1024 // a header value
)

// Header names never set by portico.request-header: those that frame or
// route the request (nginx and the upstream must agree on them), hop-by-hop
// ones, and those Portico sets or clears itself for every request.
var refusedRequest = map[string]string{
	"host": "framing", "content-length": "framing", "transfer-encoding": "framing", "te": "hop-by-hop",
	"connection": "hop-by-hop", "keep-alive": "hop-by-hop", "upgrade": "hop-by-hop", "trailer": "hop-by-hop",
	"proxy-connection": "hop-by-hop", "http2-settings": "hop-by-hop", "expect": "framing",
	"proxy-authorization": "hop-by-hop", "proxy": "set by Portico",
	"x-real-ip": "set by Portico", "x-forwarded-for": "set by Portico", "x-forwarded-proto": "set by Portico",
	"x-forwarded-host": "set by Portico", "x-forwarded-port": "set by Portico", "x-forwarded-ssl": "set by Portico",
	"forwarded": "set by Portico", "x-forwarded-prefix": "set by Portico", "x-original-url": "set by Portico",
	"x-rewrite-url": "set by Portico", "x-client-ip": "set by Portico", "true-client-ip": "set by Portico",
	"client-ip": "set by Portico", "x-cluster-client-ip": "set by Portico", "cf-connecting-ip": "set by Portico",
	"fastly-client-ip": "set by Portico", "x-forwarded-server": "set by Portico", "x-original-forwarded-for": "set by Portico",
}

// Header names never set by portico.response-header: framing and
// hop-by-hop ones, those nginx writes itself, and HSTS (portico.hsts).
var refusedResponse = map[string]string{
	"content-length": "framing", "transfer-encoding": "framing", "content-type": "set by nginx",
	"connection": "hop-by-hop", "keep-alive": "hop-by-hop", "upgrade": "hop-by-hop", "trailer": "hop-by-hop",
	"te": "hop-by-hop", "proxy-connection": "hop-by-hop", "date": "set by nginx", "server": "set by nginx",
	"strict-transport-security": "set with portico.hsts",
}

// ParseHeaderName validates a header name for a request (request true) or
// response header option: an RFC 9110 token restricted to ASCII letters,
// digits and "-", starting with a letter, at most MaxHeaderNameBytes (the
// other token characters, such as "$" and "'", mean something to nginx and
// appear in no real header name). Framing, hop-by-hop and Portico's own
// headers are refused.
func ParseHeaderName(name string, request bool) error {
	if name == "" || len(name) > MaxHeaderNameBytes {
		return fmt.Errorf("header name must be 1-%d bytes", MaxHeaderNameBytes)
	}
	if !(name[0] >= 'a' && name[0] <= 'z' || name[0] >= 'A' && name[0] <= 'Z') {
		return errors.New("header name must start with a letter")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && c != '-' {
			return fmt.Errorf("header name holds %q: only letters, digits and '-' are allowed", c)
		}
	}
	l := strings.ToLower(name)
	refused := refusedResponse
	if request {
		refused = refusedRequest
	}
	if why, ok := refused[l]; ok {
		return fmt.Errorf("header %s cannot be set (%s)", name, why)
	}
	if strings.HasPrefix(l, "x-accel-") {
		return fmt.Errorf("header %s cannot be set (nginx reads X-Accel-* itself)", name)
	}
	return nil
}

// ParseHeaderValue validates a header value: printable ASCII (0x20-0x7E)
// without leading or trailing space, at most MaxHeaderValueBytes. No tab,
// CR, LF, NUL, other control or non-ASCII byte. "" is valid: it removes the
// header.
func ParseHeaderValue(v string) error {
	if len(v) > MaxHeaderValueBytes {
		return fmt.Errorf("header value is %d bytes, over %d", len(v), MaxHeaderValueBytes)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("header value holds byte %q: only printable ASCII is allowed", c)
		}
	}
	if strings.TrimSpace(v) != v {
		return errors.New("header value starts or ends with a space")
	}
	return nil
}

// SortHeaders sorts hs by lower-case name, for a stable order on both paths.
func SortHeaders(hs []Header) {
	slices.SortFunc(hs, func(a, b Header) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
}

// EncodeHeaders is a header list as one dynamic-table value: "Name:value"
// items separated by spaces, each value with "%" and " " written %25 and
// %20 (portico.lua decodes them). Names hold neither ":" nor " ".
func EncodeHeaders(hs []Header) string {
	var b strings.Builder
	for i, h := range hs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(h.Name)
		b.WriteByte(':')
		for j := 0; j < len(h.Value); j++ {
			switch c := h.Value[j]; c {
			case '%':
				b.WriteString("%25")
			case ' ':
				b.WriteString("%20")
			default:
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}

// fields are the header options' dynamic-table fields:
//
//	request-headers=<EncodeHeaders>
//	response-headers=<EncodeHeaders>
//	security-headers=1
func (h Headers) fields() []Field {
	var fs []Field
	if len(h.Request) > 0 {
		fs = append(fs, Field{"request-headers", EncodeHeaders(h.Request)})
	}
	if len(h.Response) > 0 {
		fs = append(fs, Field{"response-headers", EncodeHeaders(h.Response)})
	}
	if h.Security {
		fs = append(fs, Field{"security-headers", "1"})
	}
	return fs
}

// diff names the first header option that differs from owner's.
func (h Headers) diff(owner Headers) (label, mine, theirs string) {
	if h.Security != owner.Security {
		return LabelSecurityHeaders, fmt.Sprint(h.Security), fmt.Sprint(owner.Security)
	}
	if l, m, t := diffHeaders(LabelResponseHeader, h.Response, owner.Response); l != "" {
		return l, m, t
	}
	return diffHeaders(LabelRequestHeader, h.Request, owner.Request)
}

func diffHeaders(prefix string, mine, theirs []Header) (label, m, t string) {
	show := func(hs []Header) map[string]string {
		out := make(map[string]string, len(hs))
		for _, h := range hs {
			out[strings.ToLower(h.Name)] = fmt.Sprintf("%q", h.Value)
		}
		return out
	}
	a, b := show(mine), show(theirs)
	var names []string
	for _, h := range append(slices.Clone(mine), theirs...) {
		names = append(names, h.Name)
	}
	slices.SortFunc(names, func(x, y string) int { return strings.Compare(strings.ToLower(x), strings.ToLower(y)) })
	for _, n := range names {
		l := strings.ToLower(n)
		va, oka := a[l]
		vb, okb := b[l]
		if oka == okb && va == vb {
			continue
		}
		if !oka {
			va = "(unset)"
		}
		if !okb {
			vb = "(unset)"
		}
		return prefix + n, va, vb
	}
	return "", "", ""
}
