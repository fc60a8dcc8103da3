package nginx

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/fcgi"
	"strconv"
	"testing"

	"github.com/portico/portico/internal/routing"
)

// fastcgiServer is a FastCGI responder (net/http/fcgi) on loopback that
// answers with the CGI parameters nginx sent; it returns its port.
func fastcgiServer(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go fcgi.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env := fcgi.ProcessEnv(r)
		fmt.Fprintf(w, "F script=%s root=%s uri=%s host=%s xff=%s", env["SCRIPT_FILENAME"], env["DOCUMENT_ROOT"], r.URL.RequestURI(), r.Host, r.Header.Get("X-Forwarded-For"))
	}))
	return l.Addr().(*net.TCPAddr).Port
}

// uwsgiServer answers the uwsgi protocol (a 4-byte header: modifier1,
// little-endian size, modifier2; then the size bytes of 2-byte-length
// key/value pairs) with an HTTP response naming REQUEST_URI and
// SERVER_NAME, one request per connection; it returns its port.
func uwsgiServer(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				var hdr [4]byte
				if _, err := io.ReadFull(br, hdr[:]); err != nil || hdr[0] != 0 {
					return
				}
				vars := make([]byte, binary.LittleEndian.Uint16(hdr[1:3]))
				if _, err := io.ReadFull(br, vars); err != nil {
					return
				}
				env := map[string]string{}
				for len(vars) >= 2 {
					n := int(binary.LittleEndian.Uint16(vars))
					if len(vars) < 2+n+2 {
						return
					}
					k := string(vars[2 : 2+n])
					vars = vars[2+n:]
					m := int(binary.LittleEndian.Uint16(vars))
					if len(vars) < 2+m {
						return
					}
					env[k], vars = string(vars[2:2+m]), vars[2+m:]
				}
				body := fmt.Sprintf("U uri=%s host=%s", env["REQUEST_URI"], env["SERVER_NAME"])
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %s\r\n\r\n%s", strconv.Itoa(len(body)), body)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// TestFastCGIAndUWSGI (issue 15): VIRTUAL_PROTO=fastcgi with VIRTUAL_ROOT,
// and uwsgi, reach real FastCGI and uwsgi responders through the real
// nginx, on both paths; each FastCGI route's document root is its own.
func TestFastCGIAndUWSGI(t *testing.T) {
	for _, dyn := range []bool{true, false} {
		name := "static"
		if dyn {
			name = "dynamic"
		}
		t.Run(name, func(t *testing.T) {
			h := startStage(t, false, func(c *Config) { c.Dynamic = dyn })
			fc := fastcgiServer(t)
			h.putContainer("php", fc, map[string]string{routing.LabelVhost: "php.test", routing.LabelHTTPS: routing.HTTPSOff,
				routing.LabelProtocol: routing.ProtoFastCGI, routing.LabelRoot: "/app/public"})
			h.putContainer("php2", fc, map[string]string{routing.LabelVhost: "php2.test", routing.LabelHTTPS: routing.HTTPSOff,
				routing.LabelProtocol: routing.ProtoFastCGI})
			h.putContainer("py", uwsgiServer(t), map[string]string{routing.LabelVhost: "py.test", routing.LabelHTTPS: routing.HTTPSOff,
				routing.LabelProtocol: routing.ProtoUWSGI})
			h.putContainer("web", echoServer(t, "H"), map[string]string{routing.LabelVhost: "web.test", routing.LabelHTTPS: routing.HTTPSOff})
			h.want("php.test", 200, "F script=/app/public/ root=/app/public uri=/ host=php.test xff=127.0.0.1")
			h.want("php2.test", 200, "F script=/var/www/public/ root=/var/www/public uri=/ host=php2.test")
			h.want("py.test", 200, "U uri=/ host=py.test")
			h.want("web.test", 200, "H host=web.test")
			// The next request on each still has its own root.
			h.want("php.test", 200, "root=/app/public ")
		})
	}
}
