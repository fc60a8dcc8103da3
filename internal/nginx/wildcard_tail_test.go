package nginx

import (
	"testing"

	"github.com/portico/portico/internal/routing"
)

// TestTrailingWildcardHosts (issue 15): a trailing wildcard such as
// "www.example.*" routes as nginx's server_name does, on both paths: the
// exact name, then the longest leading wildcard, then the longest trailing
// wildcard, then the default route. The real nginx answers; HTTP only (no
// certificate can name a trailing wildcard).
func TestTrailingWildcardHosts(t *testing.T) {
	for _, dyn := range []bool{true, false} {
		name := "static"
		if dyn {
			name = "dynamic"
		}
		t.Run(name, func(t *testing.T) {
			h := startStage(t, false, func(c *Config) { c.Dynamic = dyn })
			off := func(host string) map[string]string {
				return map[string]string{routing.LabelVhost: host, routing.LabelHTTPS: routing.HTTPSOff}
			}
			h.putContainer("t2", echoServer(t, "T2"), off("www.example.*"))
			h.putContainer("t3", echoServer(t, "T3"), off("www.example.co.*"))
			h.putContainer("lead", echoServer(t, "L"), off("*.example.com"))
			h.putContainer("exact", echoServer(t, "E"), off("www.example.org"))
			d := off("d.test")
			d[routing.LabelDefault] = "true"
			h.putContainer("def", echoServer(t, "D"), d)
			h.want("d.test", 200, "D ")
			h.want("www.example.org", 200, "E ")
			h.want("www.example.com", 200, "L ")    // leading before trailing
			h.want("www.example.net", 200, "T2 ")   // trailing
			h.want("WWW.Example.Net.", 200, "T2 ")  // any case, trailing dot
			h.want("www.example.co.uk", 200, "T3 ") // the longest trailing wildcard
			h.want("www.example.co", 200, "T2 ")    // "www.example.co.*" needs one more label
			h.want("www.example", 200, "D ")        // ".*" needs at least one label
			h.want("xwww.example.net", 200, "D ")   // whole labels only
			h.want("a.www.example.net", 200, "D ")  // a trailing wildcard is a prefix of the name
		})
	}
}
