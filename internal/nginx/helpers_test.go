package nginx

import (
	"bufio"
	"io"
	"testing"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/certtest"
)

const nginxBin = "/usr/sbin/nginx"

// selfSigned makes a certificate bundle for names with the given serial.
func selfSigned(t testing.TB, serial int64, names ...string) store.CertBundle {
	return certtest.SelfSigned(t, serial, names...)
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

func route(host string, ups ...string) routing.Route {
	return routing.Route{Host: host, Protocol: routing.ProtoHTTP, HTTPS: routing.HTTPSRedirect, Upstreams: ups, Containers: []string{"c-" + host}}
}
