package bench

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/testenv/porticotest"
)

// SITE: the cost of the redirect and header options (issue 15 §4: each
// option at most 10 % over a hand-written nginx doing the same thing),
// side by side in one run, wrk -c32, rounds alternated ABBA:
//   - redirect: a vhost with portico.redirect-to (keep path) against a
//     hand-written `return 301 "https://new.example$request_uri"`;
//   - headers: portico.security-headers=true, two response headers and a
//     request header against the same add_header / proxy_set_header lines
//     in a hand-written proxy config;
//
// both to the same backend container. PORTICO_BENCH_ARGS=--nginx-dynamic=off
// measures the static path.
func BenchmarkSiteOptionsCost(b *testing.B) {
	wrk := needWrk(b)
	for b.Loop() {
		d := newDocker(b)
		net := d.Network(b, "site")
		r := startRunOwn(b, d, net)
		redir := "redir-" + d.RunID + ".test"
		hdrs := "hdrs-" + d.RunID + ".test"
		_, ip := backend(b, d, net, "site", map[string]string{"portico.vhost": hdrs, "portico.https": "off",
			"portico.security-headers": "true", "portico.response-header.X-Site": "a", "portico.response-header.Cache-Control": "no-store",
			"portico.request-header.X-Tenant": "t1"})
		backend(b, d, net, "siteredir", map[string]string{"portico.vhost": redir, "portico.https": "off",
			"portico.redirect-to": "https://new.example/", "portico.redirect-keep-path": "true"})
		waitLive(b, r, hdrs)
		waitStatus(b, r.http, redir, 301)
		hand, _ := startHandNginx(b, func(listen string) string {
			return fmt.Sprintf(`upstream backend {
    server %s:80;
    keepalive 32;
}
map $upstream_http_x_content_type_options $sec_xcto { "" "nosniff"; default ""; }
map $upstream_http_referrer_policy $sec_rp { "" "strict-origin-when-cross-origin"; default ""; }
map $upstream_http_x_frame_options $sec_xfo { "" "SAMEORIGIN"; default ""; }
server {
    listen %s default_server;
    server_name %s;
    location / {
        return 301 "https://new.example$request_uri";
    }
}
server {
    listen %s;
    server_name %s;
    add_header X-Content-Type-Options $sec_xcto always;
    add_header Referrer-Policy $sec_rp always;
    add_header X-Frame-Options $sec_xfo always;
    proxy_hide_header X-Site;
    add_header X-Site "a" always;
    proxy_hide_header Cache-Control;
    add_header Cache-Control "no-store" always;
    location / {
        proxy_pass http://backend;
        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header Connection "";
        proxy_set_header X-Tenant "t1";
    }
}
`, ip, listen, redir, listen, hdrs)
		}, func(listen string) error { return codeIs(listen, hdrs, 200) })
		const (
			conns  = 32
			rounds = 8
			each   = 4 * time.Second
		)
		var lines []string
		for _, host := range []string{redir, hdrs} {
			var ratios []float64
			var gsum, hsum float64
			var gerr, herr int
			for i := range rounds {
				var g, h wrkResult
				if i%2 == 0 {
					g = runWrk(b, wrk, r.http, host, conns, each, "")
					h = runWrk(b, wrk, hand, host, conns, each, "")
				} else {
					h = runWrk(b, wrk, hand, host, conns, each, "")
					g = runWrk(b, wrk, r.http, host, conns, each, "")
				}
				// wrk counts a keep-alive connection nginx closes (a reload)
				// as a read error; any other failure ends the benchmark.
				if g.non2xx+h.non2xx > 0 {
					b.Fatalf("%s: failed requests: portico %d, hand-written %d", host, g.non2xx, h.non2xx)
				}
				gerr += g.sockErrors
				herr += h.sockErrors
				ratios = append(ratios, g.rps/h.rps)
				gsum += g.rps
				hsum += h.rps
			}
			slices.Sort(ratios)
			median := (ratios[(len(ratios)-1)/2] + ratios[len(ratios)/2]) / 2
			what := "redirect (return 301)"
			if host == hdrs {
				what = "headers (preset + 2 response + 1 request)"
			}
			lines = append(lines, fmt.Sprintf("%s: portico %.0f req/s, hand-written %.0f req/s, ratio %.3f, median of rounds %.3f (%.3f-%.3f), socket errors %d / %d",
				what, gsum/rounds, hsum/rounds, gsum/hsum, median, ratios[0], ratios[len(ratios)-1], gerr, herr))
		}
		b.Logf("SITE: %d rounds x %s, wrk -c%d, goal ratio >= 0.90 (cost <= 10 %%): %s", rounds, each, conns, strings.Join(lines, " · "))
	}
}

var noFollow = &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func codeIs(addr, host string, want int) error {
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = host
	resp, err := noFollow.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s: %d, want %d", host, resp.StatusCode, want)
	}
	return nil
}

func waitStatus(b *testing.B, addr, host string, want int) {
	b.Helper()
	porticotest.Eventually(b, 30*time.Second, fmt.Sprintf("%s answers %d", host, want), func() error { return codeIs(addr, host, want) })
}
