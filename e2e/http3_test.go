package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/portico/portico/internal/testenv/dockertest"
)

// HTTP/3 needs nginx built with http_v3_module: the image's trixie nginx
// 1.26, not the host's bookworm 1.22. So `portico run` runs in a container
// of the image (built FROM scripts/base-image), on a network the test
// creates, and the test fetches a site from the container's address over
// QUIC (UDP 443) with quic-go's HTTP/3 client, verified against the local
// CA. Both paths: the dynamic one picks the certificate per QUIC handshake
// in ssl_certificate_by_lua; the static one from nginx's SNI maps.
func TestHTTP3(t *testing.T) {
	image := porticoImage(t)
	d := dockertest.New(t)
	network := d.Network(t, "portico")
	for _, path := range []struct{ name, dynamic string }{{"dynamic", "on"}, {"static", "off"}} {
		t.Run(path.name, func(t *testing.T) {
			host := "h3-" + path.name + "-" + d.RunID + ".test"
			web := d.Run(t, dockertest.RunOptions{Name: "web-" + path.name, Network: network, Labels: map[string]string{"portico.vhost": host}})
			want := "name=" + d.Inspect(t, web).Name[1:]
			// Only this subtest's backend: the other's would be a
			// second site, which is fine, but the filter keeps
			// the view small.
			id := runPortico(t, d, image, network, "--label-filter", "portico.vhost="+host, "--nginx-dynamic", path.dynamic)
			ip := d.IP(t, id, network)
			roots := containerLocalCA(t, id)

			// The HTTPS response over TCP advertises HTTP/3 on its port.
			eventually(t, 90*time.Second, "HTTPS over TCP with Alt-Svc", func() error {
				return altSvc(net.JoinHostPort(ip, "443"), host, roots)
			})
			var resp *h3Response
			eventually(t, 30*time.Second, "the site over HTTP/3", func() error {
				var err error
				resp, err = getH3(net.JoinHostPort(ip, "443"), host, roots)
				if err != nil {
					return err
				}
				if resp.status != 200 || !strings.Contains(resp.body, want) {
					return fmt.Errorf("HTTP/3 GET https://%s/: %d %q, want 200 containing %q", host, resp.status, resp.body, want)
				}
				return nil
			})
			if resp.proto != "HTTP/3.0" {
				t.Errorf("served over %s, want HTTP/3.0", resp.proto)
			}
			if !strings.Contains(resp.leafNames, host) {
				t.Errorf("HTTP/3 certificate names %s, want %s", resp.leafNames, host)
			}
			// An unknown name gets no certificate over QUIC either.
			if r, err := getH3(net.JoinHostPort(ip, "443"), "unknown-"+d.RunID+".test", roots); err == nil {
				t.Errorf("unknown SNI over HTTP/3: handshake succeeded (%d %s)", r.status, r.leafNames)
			}

			// status says HTTP/3 is on.
			out := runCmd(t, time.Minute, nil, "", "docker", "exec", id, "portico", "status", "--data-dir", "/var/lib/portico", "--json")
			var rep struct {
				Nginx []struct {
					HTTP3    bool   `json:"http3"`
					HTTP3Off string `json:"http3_off"`
				} `json:"nginx"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Nginx) != 1 || !rep.Nginx[0].HTTP3 {
				t.Errorf("status --json: nginx %+v (err %v), want http3 on", rep.Nginx, err)
			}
		})
	}
}

// runPortico starts `portico run` in a container of image on network, with
// the Docker socket for its reporter, and returns its id. It is removed when
// the test ends (and carries d's label, which dockertest removes by).
func runPortico(t *testing.T, d *dockertest.Env, image, network string, args ...string) string {
	t.Helper()
	run := []string{"run", "-d", "--network", network, "-v", "/var/run/docker.sock:/var/run/docker.sock:ro",
		"--label", dockertest.RunLabel + "=" + d.RunID, "--name", d.Name("portico-" + strings.ReplaceAll(t.Name(), "/", "-")),
		image, "run", "--data-dir", "/var/lib/portico", "--network", network, "--host", "docker-test"}
	id := strings.TrimSpace(runCmd(t, 2*time.Minute, nil, "", "docker", append(run, args...)...))
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := tryCmd(time.Minute, nil, "", "docker", "logs", "--tail", "80", id)
			t.Logf("portico logs:\n%s", out)
		}
		tryCmd(time.Minute, nil, "", "docker", "rm", "-f", "-v", id)
	})
	return id
}

// containerLocalCA is the local CA's root, from `portico status` in the
// container.
func containerLocalCA(t *testing.T, id string) *x509.CertPool {
	t.Helper()
	var pool *x509.CertPool
	eventually(t, 60*time.Second, "the local CA", func() error {
		out, err := tryCmd(30*time.Second, nil, "", "docker", "exec", id, "portico", "status", "--data-dir", "/var/lib/portico", "--local-ca-cert")
		if err != nil {
			return err
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(out)) {
			return fmt.Errorf("no certificate in %q", out)
		}
		return nil
	})
	return pool
}

// altSvc fetches https://host/ over TCP from addr and checks that the
// response advertises HTTP/3 on the same port.
func altSvc(addr, host string, roots *x509.CertPool) error {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: host},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + host + "/")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	_, port, _ := net.SplitHostPort(addr)
	if got, want := resp.Header.Get("Alt-Svc"), `h3=":`+port+`"; ma=86400`; resp.StatusCode != 200 || got != want {
		return fmt.Errorf("GET https://%s/ at %s: %d, Alt-Svc %q, want 200 and %q", host, addr, resp.StatusCode, got, want)
	}
	return nil
}

type h3Response struct {
	status      int
	proto, body string
	leafNames   string
}

// getH3 fetches https://host/ from addr (UDP) over HTTP/3 with quic-go,
// verifying the certificate against roots for host.
func getH3(addr, host string, roots *x509.CertPool) (*h3Response, error) {
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: host},
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			return quic.DialAddrEarly(ctx, addr, tlsCfg, cfg)
		},
	}
	defer tr.Close()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + host + "/")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	r := &h3Response{status: resp.StatusCode, proto: resp.Proto, body: string(b)}
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		r.leafNames = strings.Join(resp.TLS.PeerCertificates[0].DNSNames, ",")
	}
	return r, nil
}
