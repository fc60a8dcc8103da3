package nginx

import (
	"fmt"
	"strings"

	"github.com/portico/portico/internal/nginx/render"
)

// HTTP/3 modes (--http3).
const (
	HTTP3Auto = "auto" // on when nginx has http_v3_module and there is an HTTPS address
	HTTP3On   = "on"   // as auto, but a missing module is an error
	HTTP3Off  = "off"
)

// HasHTTP3Module says whether `nginx -V` output names http_v3_module
// among nginx's configure arguments.
func HasHTTP3Module(nginxV string) bool {
	for f := range strings.FieldsSeq(nginxV) {
		if f == "--with-http_v3_module" {
			return true
		}
	}
	return false
}

// DecideHTTP3 decides whether HTTPS sites are also served over QUIC, and
// says why when they are not: mode is --http3, nginxV the output of
// `nginx -V`. "on" with an nginx that cannot is an error; "auto" is then
// off, with the reason status shows.
func DecideHTTP3(mode, nginxV string, httpsAddrs []string) (on bool, why string, err error) {
	switch mode {
	case HTTP3Off:
		return false, "turned off (--http3=off)", nil
	case HTTP3Auto, "", HTTP3On:
	default:
		return false, "", fmt.Errorf("--http3 %q: want auto, on or off", mode)
	}
	if len(httpsAddrs) == 0 {
		return false, "no HTTPS address (--https-addr)", nil
	}
	ver, _ := render.VersionFromOutput(nginxV)
	if ver == "" {
		ver = "?"
	}
	if !HasHTTP3Module(nginxV) {
		why = fmt.Sprintf("nginx %s is built without http_v3_module (HTTP/3 needs nginx 1.25 or later built with it, e.g. Debian trixie's nginx 1.26 in Portico's image)", ver)
		if mode == HTTP3On {
			return false, "", fmt.Errorf("--http3=on: %s", why)
		}
		return false, why, nil
	}
	return true, "", nil
}
