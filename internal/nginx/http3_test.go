package nginx

import (
	"strings"
	"testing"
)

func TestDecideHTTP3(t *testing.T) {
	const (
		trixie   = "nginx version: nginx/1.26.3\nbuilt with OpenSSL 3.5.1\nconfigure arguments: --with-http_ssl_module --with-http_v2_module --with-http_v3_module --with-stream"
		bookworm = "nginx version: nginx/1.22.1\nbuilt with OpenSSL 3.0.9\nconfigure arguments: --with-http_ssl_module --with-http_v2_module"
		// A module name inside another argument is not the module.
		lookalike = "nginx version: nginx/1.26.3\nconfigure arguments: --with-cc-opt='--with-http_v3_module-x'"
	)
	tls := []string{":443"}
	for _, tc := range []struct {
		name, mode, v string
		https         []string
		on            bool
		why, err      string
	}{
		{name: "auto with module", mode: "auto", v: trixie, https: tls, on: true},
		{name: "default mode is auto", mode: "", v: trixie, https: tls, on: true},
		{name: "on with module", mode: "on", v: trixie, https: tls, on: true},
		{name: "auto without module", mode: "auto", v: bookworm, https: tls, why: "nginx 1.22.1 is built without http_v3_module"},
		{name: "on without module fails", mode: "on", v: bookworm, https: tls, err: "--http3=on: nginx 1.22.1 is built without http_v3_module"},
		{name: "lookalike argument", mode: "auto", v: lookalike, https: tls, why: "without http_v3_module"},
		{name: "off", mode: "off", v: trixie, https: tls, why: "--http3=off"},
		{name: "no https address", mode: "on", v: trixie, why: "no HTTPS address"},
		{name: "bad mode", mode: "yes", v: trixie, https: tls, err: `--http3 "yes"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			on, why, err := DecideHTTP3(tc.mode, tc.v, tc.https)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if on != tc.on || (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) {
				t.Errorf("got on=%t why=%q, want on=%t why~%q", on, why, tc.on, tc.why)
			}
		})
	}
}
