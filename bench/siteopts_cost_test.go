package bench

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/testenv/porticotest"
)

// optHash is "secret" as SHA-512 crypt with 5000 rounds (openssl passwd
// -6), the kind of hash portico.auth-file accepts.
const optHash = "$6$abcdefgh$oGoxMtczJ0/xYkNKQnGuC3pOdNoGsZRZNs7n5JzX8KfMJWEmD2Bx4wBt/tMCPvjE87aPyrlQPEKxEcxV6d4J6." // secret1

// OPT: each access option's cost through Portico (labels) against a
// hand-written nginx doing the same thing (allow/deny, auth_basic,
// limit_req), side by side in one run: wrk -c16, rounds alternating and
// swapping who goes first, one route per option and one with none; figures
// are req/s ratios Portico/hand-written per option. PORTICO_BENCH_ARGS=
// --nginx-dynamic=off measures the static path.
//
//	go test -run '^$' -bench SiteOptionCost -benchtime 1x -timeout 30m ./bench/
func BenchmarkSiteOptionCost(b *testing.B) {
	wrk := needWrk(b)
	for b.Loop() {
		d := newDocker(b)
		net := d.Network(b, "opt")
		authDir := b.TempDir()
		if err := os.WriteFile(filepath.Join(authDir, "users"), []byte("alice:"+optHash+"\n"), 0o600); err != nil {
			b.Fatal(err)
		}
		r := startRunOwn(b, d, net, "--auth-dir", authDir)
		// The hand-written nginx's workers (nobody) read their own copy,
		// in a directory they can enter.
		handAuth, err := os.MkdirTemp("", "portico-hand-auth-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(handAuth) })
		if err := os.Chmod(handAuth, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(handAuth, "users"), []byte("alice:"+optHash+"\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		type variant struct {
			name, host, header string
			labels             map[string]string
			hand               string // the server's directives in the hand-written config
		}
		auth := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("alice:secret1"))
		vs := []variant{
			{name: "none"},
			{name: "allow", labels: map[string]string{"portico.allow": "10.0.0.0/8, 192.168.0.0/16, 127.0.0.0/8"},
				hand: "allow 10.0.0.0/8; allow 192.168.0.0/16; allow 127.0.0.0/8; deny all;"},
			{name: "auth-file", header: auth, labels: map[string]string{"portico.auth-file": "users"},
				hand: `auth_basic "Restricted"; auth_basic_user_file ` + filepath.Join(handAuth, "users") + ";"},
			{name: "rate", labels: map[string]string{"portico.rate": "100000r/s", "portico.rate-burst": "100000"},
				hand: "limit_req zone=hand burst=100000 nodelay; limit_req_status 429;"},
		}
		var ip string
		for i := range vs {
			v := &vs[i]
			v.host = "opt-" + v.name + "-" + d.RunID + ".test"
			l := map[string]string{"portico.vhost": v.host, "portico.https": "off"}
			for k, x := range v.labels {
				l[k] = x
			}
			_, ip = backend(b, d, net, "opt-"+v.name, l)
		}
		for _, v := range vs {
			waitCode(b, r.http, v.host, v.header, 200)
		}
		hand, _ := startHandNginx(b, func(listen string) string {
			var s strings.Builder
			fmt.Fprintf(&s, "upstream backend {\n    server %s:80;\n    keepalive 32;\n}\n", ip)
			s.WriteString("limit_req_zone $binary_remote_addr zone=hand:10m rate=100000r/s;\n")
			for _, v := range vs {
				fmt.Fprintf(&s, `server {
    listen %s;
    server_name %s;
    %s
    location / {
        proxy_pass http://backend;
        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header Connection "";
    }
}
`, listen, v.host, v.hand)
			}
			return s.String()
		}, func(listen string) error {
			if code, _, err := get(listen, vs[0].host); err != nil || code != 200 {
				return fmt.Errorf("hand-written nginx: %d %v", code, err)
			}
			return nil
		})
		for _, v := range vs {
			waitCode(b, hand, v.host, v.header, 200)
		}
		const (
			conns  = 16
			rounds = 6
			each   = 3 * time.Second
		)
		var lines []string
		for _, v := range vs {
			var ratios []float64
			var gsum, hsum float64
			failed := 0
			for i := range rounds {
				var g, h wrkResult
				if i%2 == 0 {
					g = runWrkHeader(b, wrk, r.http, v.host, v.header, conns, each)
					h = runWrkHeader(b, wrk, hand, v.host, v.header, conns, each)
				} else {
					h = runWrkHeader(b, wrk, hand, v.host, v.header, conns, each)
					g = runWrkHeader(b, wrk, r.http, v.host, v.header, conns, each)
				}
				failed += g.non2xx + g.sockErrors + h.non2xx + h.sockErrors
				gsum += g.rps
				hsum += h.rps
				ratios = append(ratios, g.rps/h.rps)
			}
			slices.Sort(ratios)
			median := (ratios[(len(ratios)-1)/2] + ratios[len(ratios)/2]) / 2
			lines = append(lines, fmt.Sprintf("%s: portico %.0f req/s, hand-written %.0f req/s, ratio %.3f, median of rounds %.3f (%.3f-%.3f), failed %d",
				v.name, gsum/rounds, hsum/rounds, gsum/hsum, median, ratios[0], ratios[len(ratios)-1], failed))
			b.ReportMetric(gsum/hsum, v.name+"-ratio")
		}
		b.Logf("OPT (goal: each option >= 0.91, i.e. <= 10%% over hand-written):\n%s", strings.Join(lines, "\n"))
	}
}

// runWrkHeader is runWrk with one more request header ("" for none).
func runWrkHeader(b *testing.B, wrk, addr, host, header string, conns int, dur time.Duration) wrkResult {
	b.Helper()
	if header == "" {
		return runWrk(b, wrk, addr, host, conns, dur, "")
	}
	args := []string{"-t", "2", "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", int(dur.Seconds())), "--latency", "--timeout", "5s",
		"-H", "Host: " + host, "-H", header, "http://" + addr + "/"}
	out, err := exec.Command(wrk, args...).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	s := string(out)
	res := wrkResult{raw: s}
	if m := reRPS.FindStringSubmatch(s); m != nil {
		res.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reNon2xx.FindStringSubmatch(s); m != nil {
		res.non2xx, _ = strconv.Atoi(m[1])
	}
	if m := reSockErr.FindStringSubmatch(s); m != nil {
		for _, x := range m[1:] {
			n, _ := strconv.Atoi(x)
			res.sockErrors += n
		}
	}
	return res
}

// waitCode waits until addr answers code to GET / for host with
// header ("" for none).
func waitCode(b *testing.B, addr, host, header string, code int) {
	b.Helper()
	porticotest.Eventually(b, 60*time.Second, host+" answers "+strconv.Itoa(code), func() error {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = host
		if k, v, ok := strings.Cut(header, ": "); ok {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			return fmt.Errorf("%d", resp.StatusCode)
		}
		return nil
	})
}
