package nginx

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico/portico/internal/nginx/dynamic"
	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// holdBackend answers /hold only when release is closed (or the request
// goes away), and anything else at once; held counts the /hold requests
// it is holding.
type holdBackend struct {
	port    int
	held    atomic.Int64
	release chan struct{}
}

func startHoldBackend(t *testing.T) *holdBackend {
	t.Helper()
	b := &holdBackend{release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			b.held.Add(1)
			defer b.held.Add(-1)
			select {
			case <-b.release:
			case <-r.Context().Done():
			}
		}
		fmt.Fprint(w, "ok")
	}))
	// Close the held requests before the server, which waits for them.
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-b.release:
		default:
			close(b.release)
		}
	})
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	b.port, _ = strconv.Atoi(p)
	return b
}

// limitClient sends requests for host from one loopback source address,
// over plain HTTP or TLS, with an optional X-Forwarded-For.
type limitClient struct {
	t         *testing.T
	host, xff string
	from      string
}

func (c limitClient) dial(addr string, overTLS bool) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(c.from)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil || !overTLS {
		return conn, err
	}
	tc := tls.Client(conn, &tls.Config{ServerName: c.host, InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

func (c limitClient) request(path string) string {
	s := "GET " + path + " HTTP/1.1\r\nHost: " + c.host + "\r\nConnection: close\r\n"
	if c.xff != "" {
		s += "X-Forwarded-For: " + c.xff + "\r\n"
	}
	return s + "\r\n"
}

// hold starts a /hold request and leaves it in progress; the test's end
// closes it.
func (c limitClient) hold(addr string, overTLS bool) {
	c.t.Helper()
	conn, err := c.dial(addr, overTLS)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, c.request("/hold")); err != nil {
		c.t.Fatal(err)
	}
}

// status is the status code of one request for /.
func (c limitClient) status(addr string, overTLS bool) (int, error) {
	conn, err := c.dial(addr, overTLS)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, c.request("/")); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufioReader(conn), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestLimitConnPerClientAddress: with --max-requests-per-client 3, on
// both paths and over HTTP and TLS (one zone for all), the fourth request
// in progress from one address gets 429 while another address is served;
// behind a trusted proxy the address counted is the client's (realip), not
// the proxy's; a finished request frees its place; and the dynamic path's
// control socket is not limited.
func TestLimitConnPerClientAddress(t *testing.T) {
	for _, path := range []string{"dynamic", "static"} {
		t.Run(path, func(t *testing.T) {
			h := startStage(t, true, func(c *Config) {
				c.Dynamic = path == "dynamic"
				c.MaxRequestsPerClient = 3
				c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.4/32")}
			})
			b := startHoldBackend(t)
			h.putContainer("a1", b.port, map[string]string{routing.LabelVhost: "app.test", routing.LabelHTTPS: routing.HTTPSBoth})
			bu := selfSigned(t, 3001, "app.test")
			if _, err := store.PutJSON(context.Background(), h.etcd.Client, h.keys.CertBundle(bu.Primary), bu); err != nil {
				t.Fatal(err)
			}
			one := limitClient{t: t, host: "app.test", from: "127.0.0.2"}
			other := limitClient{t: t, host: "app.test", from: "127.0.0.3"}
			want := func(what string, c limitClient, overTLS bool, code int) {
				t.Helper()
				addr := h.http
				if overTLS {
					addr = h.https
				}
				h.eventually(fmt.Sprintf("%s: %d", what, code), func() error {
					got, err := c.status(addr, overTLS)
					if err != nil {
						return err
					}
					if got != code {
						return fmt.Errorf("got %d", got)
					}
					return nil
				})
			}
			want("HTTPS served", one, true, 200)
			h.settled()
			waitHeld := func(n int64) {
				t.Helper()
				h.eventually(fmt.Sprintf("%d requests held", n), func() error {
					if got := b.held.Load(); got != n {
						return fmt.Errorf("%d held", got)
					}
					return nil
				})
			}

			// Three in progress from 127.0.0.2, over both servers.
			one.hold(h.http, false)
			one.hold(h.http, false)
			one.hold(h.https, true)
			waitHeld(3)
			for _, overTLS := range []bool{false, true} {
				if got, err := one.status(addrOf(h, overTLS), overTLS); err != nil || got != 429 {
					t.Errorf("a fourth request from the same address (TLS %v): %d %v; want 429", overTLS, got, err)
				}
				if got, err := other.status(addrOf(h, overTLS), overTLS); err != nil || got != 200 {
					t.Errorf("a request from another address (TLS %v): %d %v; want 200", overTLS, got, err)
				}
			}

			// Behind a trusted proxy, the client's address counts.
			proxied := limitClient{t: t, host: "app.test", from: "127.0.0.4", xff: "192.0.2.1"}
			for range 3 {
				proxied.hold(h.http, false)
			}
			waitHeld(6)
			if got, err := proxied.status(h.http, false); err != nil || got != 429 {
				t.Errorf("a fourth request of client 192.0.2.1 through the proxy: %d %v; want 429", got, err)
			}
			proxied.xff = "192.0.2.2"
			if got, err := proxied.status(h.https, true); err != nil || got != 200 {
				t.Errorf("client 192.0.2.2 through the same proxy: %d %v; want 200", got, err)
			}

			if path == "dynamic" {
				// Four pushes in progress on the control socket (their body
				// half sent), and a fifth request is still answered.
				sock := render.NewDynamicPaths(h.dir).ControlSocket
				for range 4 {
					conn, err := net.Dial("unix", sock)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { conn.Close() })
					if _, err := io.WriteString(conn, "PUT /routes HTTP/1.1\r\nHost: portico-control\r\nContent-Length: 1000\r\n\r\nportico-routes 1\n"); err != nil {
						t.Fatal(err)
					}
				}
				ctl := dynamic.NewControl(sock)
				defer ctl.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, _, err := ctl.State(ctx); err != nil {
					t.Errorf("control socket with four requests in progress: %v", err)
				}
			}

			// Finished requests free their places.
			close(b.release)
			waitHeld(0)
			want("the same address after its requests finished", one, false, 200)
			want("the same address over TLS", one, true, 200)
		})
	}
}

func addrOf(h *harness, overTLS bool) string {
	if overTLS {
		return h.https
	}
	return h.http
}
