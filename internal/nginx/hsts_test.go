package nginx

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// TestHSTSFullValue: a full Strict-Transport-Security value, from
// portico.hsts or from nginx-proxy's HSTS env with HTTPS_METHOD=noredirect,
// is sent as its canonical form over HTTPS and never over plain HTTP, the
// same on both paths.
func TestHSTSFullValue(t *testing.T) {
	bothPaths(t, func(t *testing.T, dynamic bool) {
		h := startStage(t, true, withDynamic(dynamic))
		a := echoServer(t, "A")
		h.putContainer("f1", a, map[string]string{routing.LabelVhost: "full.test",
			routing.LabelHSTS: "max-age=86400;  INCLUDESUBDOMAINS ;preload", routing.LabelHTTPS: routing.HTTPSBoth})
		env := store.Container{ID: "e1", Name: "c-e1", Host: "node1", State: "running",
			Labels:   map[string]string{routing.LabelPort: fmt.Sprint(a)},
			Env:      map[string]string{routing.EnvVirtualHost: "env.test", routing.EnvHTTPSMethod: "noredirect", routing.EnvHSTS: "max-age=60; preload"},
			Networks: map[string]store.Network{"bridge": {IPv4: "127.0.0.1"}}}
		if _, err := store.PutJSON(context.Background(), h.etcd.Client, h.keys.Container("node1", env.ID), env); err != nil {
			t.Fatal(err)
		}
		for i, host := range []string{"full.test", "env.test"} {
			b := selfSigned(t, int64(4001+i), host)
			if _, err := store.PutJSON(context.Background(), h.etcd.Client, h.keys.CertBundle(b.Primary), b); err != nil {
				t.Fatal(err)
			}
		}
		for host, want := range map[string]string{"full.test": "max-age=86400; includeSubDomains; preload", "env.test": "max-age=60; preload"} {
			cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{ServerName: host, InsecureSkipVerify: true}}}
			h.eventually(host+" HSTS over HTTPS", func() error {
				req, _ := http.NewRequest("GET", "https://"+h.https+"/", nil)
				req.Host = host
				resp, err := cl.Do(req)
				if err != nil {
					return err
				}
				resp.Body.Close()
				if got := resp.Header.Get("Strict-Transport-Security"); resp.StatusCode != 200 || got != want {
					return fmt.Errorf("status %d, HSTS %q", resp.StatusCode, got)
				}
				return nil
			})
			h.settled()
			req, _ := http.NewRequest("GET", "http://"+h.http+"/", nil)
			req.Host = host
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != "" {
				t.Errorf("%s over HTTP: %d, HSTS %q", host, resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
			}
		}
	})
}

// TestHSTSPlainHTTPToTLSUpstreamLogsNothing: a plain-HTTP request to a
// route whose upstream speaks TLS is answered with no HSTS header and no
// line in nginx's log (the dynamic path once warned of an uninitialized
// variable on every such request), on both paths.
func TestHSTSPlainHTTPToTLSUpstreamLogsNothing(t *testing.T) {
	bothPaths(t, func(t *testing.T, dynamic bool) {
		h := startStage(t, true, withDynamic(dynamic))
		up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "TLS upstream") }))
		t.Cleanup(up.Close)
		_, p, _ := net.SplitHostPort(up.Listener.Addr().String())
		h.putContainer("s1", mustAtoi(t, p), map[string]string{routing.LabelVhost: "tls.test",
			routing.LabelProtocol: routing.ProtoHTTPS, routing.LabelHTTPS: routing.HTTPSBoth})
		h.want("tls.test", 200, "TLS upstream")
		for range 3 {
			req, _ := http.NewRequest("GET", "http://"+h.http+"/", nil)
			req.Host = "tls.test"
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != "" {
				t.Errorf("over HTTP: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
			}
		}
		// nginx's stderr (error_log warn) becomes the stage's log lines;
		// a request to a sentinel host after these marks that nginx
		// handled them before the log is read.
		h.want("after.test", 404, "")
		h.log.mu.Lock()
		defer h.log.mu.Unlock()
		for _, l := range h.log.lines {
			if strings.Contains(l, "uninitialized") {
				t.Errorf("nginx logged: %s", strings.TrimSpace(l))
			}
		}
	})
}

func mustAtoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
