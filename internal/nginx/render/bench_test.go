package render

import (
	"fmt"
	"testing"

	"github.com/portico/portico/internal/routing"
)

// benchInput is n routes with two replicas each; every other route has
// HTTPS (one wildcard certificate covers them all), every tenth is gRPC.
func benchInput(n int, cert CertRef) Input {
	routes := make([]routing.Route, n)
	for i := range routes {
		r := routing.Route{
			Host:      fmt.Sprintf("app%05d.example.com", i),
			Protocol:  routing.ProtoHTTP,
			HTTPS:     routing.HTTPSRedirect,
			Upstreams: []string{fmt.Sprintf("10.%d.%d.2:8080", i/250, i%250), fmt.Sprintf("10.%d.%d.3:8080", i/250, i%250)},
		}
		if i%2 == 1 {
			r.HTTPS = routing.HTTPSOff
		}
		if i%10 == 0 {
			r.Protocol = routing.ProtoGRPC
		}
		routes[i] = r
	}
	return Input{
		Routes:   routes,
		Certs:    []CertRef{cert},
		Settings: Settings{HTTPAddrs: []string{":80"}, HTTPSAddrs: []string{":443"}, NginxVersion: "1.22.1"},
	}
}

func BenchmarkRender(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			in := benchInput(n, fakeCert("example.com", "*.example.com"))
			b.ReportAllocs()
			var size int
			for b.Loop() {
				conf, err := Render(in)
				if err != nil {
					b.Fatal(err)
				}
				size = len(conf)
			}
			b.ReportMetric(float64(size), "conf-bytes")
		})
	}
}

// BenchmarkNginxTest times `nginx -t` on the 10k-route render, the cost
// Render is to be compared with:
//
//	go test ./internal/nginx/render -run '^$' -bench 'Render|NginxTest' -benchtime 5x
func BenchmarkNginxTest(b *testing.B) {
	cert, err := writeBundle(b.TempDir(), selfSigned(b, 1, "example.com", "*.example.com"))
	if err != nil {
		b.Fatal(err)
	}
	conf, err := Render(benchInput(10000, cert))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if out, err := nginxTestConf(b, conf); err != nil {
			b.Fatalf("nginx -t: %v\n%s", err, out)
		}
	}
}

// BenchmarkNginxTestTLS times `nginx -t` on 1,000 HTTPS routes, each with
// its own certificate: what one TLS context per server used to cost.
//
//	go test ./internal/nginx/render -run '^$' -bench NginxTestTLS -benchtime 5x
func BenchmarkNginxTestTLS(b *testing.B) {
	const n = 1000
	dir := b.TempDir()
	in := Input{Settings: Settings{HTTPAddrs: []string{":80"}, HTTPSAddrs: []string{":443"}, NginxVersion: "1.22.1"}}
	for i := range n {
		host := fmt.Sprintf("app%05d.example.com", i)
		in.Routes = append(in.Routes, routing.Route{Host: host, Protocol: routing.ProtoHTTP, HTTPS: routing.HTTPSRedirect,
			Upstreams: []string{fmt.Sprintf("10.%d.%d.2:8080", i/250, i%250)}})
		ref, err := writeBundle(dir, selfSigned(b, int64(i+1), host))
		if err != nil {
			b.Fatal(err)
		}
		in.Certs = append(in.Certs, ref)
	}
	conf, err := Render(in)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(conf)), "conf-bytes")
	for b.Loop() {
		if out, err := nginxTestConf(b, conf); err != nil {
			b.Fatalf("nginx -t: %v\n%s", err, out)
		}
	}
}
