package render

import (
	"strings"

	"github.com/portico/portico/internal/siteopts"
)

// The static path's view of the redirect and header options (package
// siteopts; docs/labels.md). Every value reaching the config was validated
// by siteopts: URLs hold only RFC 3986 characters but "$", header names
// only letters, digits and "-", header values only printable ASCII; header
// values are still written as nginx strings by nginxValue, since they may
// hold '"', '\' and '$'.

// siteView is what the main template needs for the options of all vhosts:
// which http-level maps to write.
type siteView struct {
	// HostPort: a vhost redirects (portico.redirect-from) and needs the
	// port the client named in Host, $portico_host_port.
	HostPort bool
	// Dollar: a header value holds "$", written as ${portico_dollar}.
	Dollar bool
	// Security are the preset's headers, when a vhost sends them: each
	// gets a map that yields its value only when the upstream sent none.
	Security []securityHeader
}

type securityHeader struct {
	Name, Value string
	Var         string // the map's variable, without "$"
	Upstream    string // $upstream_http_<name>
}

func securityHeaders() []securityHeader {
	out := make([]securityHeader, 0, len(siteopts.SecurityPreset))
	for _, h := range siteopts.SecurityPreset {
		v := strings.ReplaceAll(strings.ToLower(h.Name), "-", "_")
		out = append(out, securityHeader{Name: h.Name, Value: h.Value, Var: "portico_sec_" + v, Upstream: "$upstream_http_" + v})
	}
	return out
}

func newSiteView(vhosts []vhost) siteView {
	var sv siteView
	for _, h := range vhosts {
		hd := h.Site.Headers
		sv.HostPort = sv.HostPort || h.Site.Redirect.Host != ""
		if hd.Security && sv.Security == nil {
			sv.Security = securityHeaders()
		}
		for _, l := range [][]siteopts.Header{hd.Response, hd.Request} {
			for _, x := range l {
				sv.Dollar = sv.Dollar || strings.Contains(x.Value, "$")
			}
		}
	}
	return sv
}

// SiteRedirect reports whether the whole vhost redirects
// (portico.redirect-to, or a portico.redirect-from name's route).
func (h vhost) SiteRedirect() bool { return h.Site.Redirect.To != "" || h.Site.Redirect.Host != "" }

// headerLine is one header option as the template writes it.
type headerLine struct {
	Name  string
	Value string // nginxValue of the value; "" removes the header
}

func headerLines(hs []siteopts.Header) []headerLine {
	out := make([]headerLine, 0, len(hs))
	for _, x := range hs {
		out = append(out, headerLine{Name: x.Name, Value: nginxValue(x.Value)})
	}
	return out
}

// ResponseHeaders are portico.response-header.<Name>.
func (h vhost) ResponseHeaders() []headerLine { return headerLines(h.Site.Headers.Response) }

// RequestHeaders are portico.request-header.<Name>.
func (h vhost) RequestHeaders() []headerLine { return headerLines(h.Site.Headers.Request) }

// RequestHeaders of a path location are its vhost's: a location's
// proxy_set_header lines replace the server's.
func (p pathView) RequestHeaders() []headerLine { return headerLines(p.Site.Headers.Request) }

// SecurityHeaders are the preset's headers the vhost sends: all of them
// with portico.security-headers=true, but those a response-header option
// of the same name replaces.
func (h vhost) SecurityHeaders() []securityHeader {
	if !h.Site.Headers.Security {
		return nil
	}
	var out []securityHeader
	for _, s := range securityHeaders() {
		custom := false
		for _, x := range h.Site.Headers.Response {
			custom = custom || strings.EqualFold(x.Name, s.Name)
		}
		if !custom {
			out = append(out, s)
		}
	}
	return out
}

// nginxValue writes a validated header value (printable ASCII) for the
// inside of an nginx double-quoted string: '\' and '"' escaped as nginx's
// parser reads them, and "$", which nginx would read as a variable in
// add_header and proxy_set_header, as ${portico_dollar}, a geo variable
// whose value is a literal "$".
func nginxValue(v string) string {
	if !strings.ContainsAny(v, `\"$`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\', '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '$':
			b.WriteString("${portico_dollar}")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
