package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/testenv/dockertest"
)

// siteGet sends one request to addr (https when roots is set, with SNI
// host) without following redirects.
func siteGet(addr, host, path string, roots *x509.CertPool) (*http.Response, string, error) {
	scheme := "http"
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	if roots != nil {
		scheme = "https"
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, ServerName: host}
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 3 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(scheme + "://" + host + path)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// The redirect and header options through the whole binary (dynamic path,
// the default), on real containers: redirect-from (also over HTTPS, with
// the name on the container's local-CA certificate), redirect-to with no
// running container, the security preset and custom headers, and a hostile
// header value rejected alone.
func TestSiteRedirectAndHeaderOptions(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "siteopts")
	p := startRun(t, d, net)
	apex := "apex-" + d.RunID + ".test"
	www := "www." + apex
	moved := "moved-" + d.RunID + ".test"
	hdrs := "hdrs-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "apex", Network: net, Labels: map[string]string{"portico.vhost": apex, "portico.redirect-from": www}})
	d.Run(t, dockertest.RunOptions{Name: "moved", Network: net, NoStart: true, Labels: map[string]string{"portico.vhost": moved,
		"portico.redirect-to": "https://new.example/", "portico.redirect-keep-path": "true", "portico.redirect-code": "308"}})
	d.Run(t, dockertest.RunOptions{Name: "hdrs", Network: net, Labels: map[string]string{"portico.vhost": hdrs,
		"portico.security-headers": "true", "portico.response-header.X-Site": `lit "$host"`, "portico.request-header.X-Tenant": "$remote_addr"}})
	d.Run(t, dockertest.RunOptions{Name: "bad", Network: net, Labels: map[string]string{"portico.vhost": "bad-" + d.RunID + ".test",
		"portico.response-header.X-Evil": "a\r\nSet-Cookie: x=1"}})

	eventually(t, 20*time.Second, "www redirects to apex", func() error {
		resp, _, err := siteGet(p.http, www, "/a?b=1", nil)
		if err == nil && (resp.StatusCode != 301 || resp.Header.Get("Location") != "http://"+apex+"/a?b=1") {
			err = fmt.Errorf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		return err
	})
	eventually(t, 10*time.Second, "apex serves", func() error { return expect200(p.http, apex, "name="+d.Name("apex")) })
	eventually(t, 10*time.Second, "redirect-to with no running container", func() error {
		resp, _, err := siteGet(p.http, moved, "/x?y", nil)
		if err == nil && (resp.StatusCode != 308 || resp.Header.Get("Location") != "https://new.example/x?y") {
			err = fmt.Errorf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		return err
	})
	eventually(t, 10*time.Second, "headers", func() error {
		resp, body, err := siteGet(p.http, hdrs, "/headers", nil)
		if err != nil {
			return err
		}
		if resp.Header.Get("X-Site") != `lit "$host"` || resp.Header.Get("X-Frame-Options") != "SAMEORIGIN" ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(body, "X-Tenant: $remote_addr\n") {
			return fmt.Errorf("%v %q", resp.Header, body)
		}
		return nil
	})
	// The redirect name is on apex's local-CA certificate and redirects over HTTPS.
	eventually(t, 20*time.Second, "www over HTTPS", func() error {
		out, err := exec.Command(binary, "status", "--data-dir", p.dataDir, "--local-ca-cert").CombinedOutput()
		if err != nil {
			return fmt.Errorf("status --local-ca-cert: %v: %s", err, out)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(out) {
			return fmt.Errorf("no certificate in %q", out)
		}
		resp, _, err := siteGet(p.https, www, "/s", roots)
		if err != nil {
			return err
		}
		if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://"+apex+"/s" {
			return fmt.Errorf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		return nil
	})
	eventually(t, 10*time.Second, "hostile header value rejected by name", func() error {
		st := statusJSON(t, "--data-dir", p.dataDir)
		probs, _ := st["problems"].([]any)
		for _, pr := range probs {
			m := pr.(map[string]any)
			if m["container"] == d.Name("bad") && m["severity"] == "error" && m["label"] == "portico.response-header.X-Evil" {
				return nil
			}
		}
		return fmt.Errorf("no error for the bad container in %v", probs)
	})
}
