package render

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// hostileSeeds reads routing's hostile values (Go-quoted, one a line).
func hostileSeeds(f *testing.F) []string {
	fh, err := os.Open(filepath.Join("..", "..", "routing", "testdata", "hostile.txt"))
	if err != nil {
		f.Fatalf("hostile seeds: %v", err)
	}
	defer fh.Close()
	var out []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if s, err := strconv.Unquote(line); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// FuzzRenderAccepted: whatever the labels say, routing.Build plus Render
// either drops the container or produces a config nginx -t accepts.
//
//	go test ./internal/nginx/render -run '^$' -fuzz FuzzRenderAccepted -fuzztime 60s
func FuzzRenderAccepted(f *testing.F) {
	good := []string{"app.example.com", "8080", "http", "redirect", "true", "true", "front", "auto"}
	f.Add(good[0], good[1], good[2], good[3], good[4], good[5], good[6], good[7])
	f.Add("*.example.com, b.example.com c.example.com", "443", "https", "both", "600", "false", "", "host")
	f.Add("g.example.com", "50051", "grpcs", "off", "0", "1", "bridge", "container")
	f.Add("xn--bcher-kva.example", "1", "GRPC", "BOTH", "false", "yes", "front", "HOST")
	for _, h := range hostileSeeds(f) {
		for i := range good {
			v := append([]string(nil), good...)
			v[i] = h
			f.Add(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7])
		}
	}

	cert, err := writeBundle(f.TempDir(), selfSigned(f, 1, "fixed.test"))
	if err != nil {
		f.Fatal(err)
	}
	var mu sync.Mutex
	accepted := map[string]bool{} // nginx -t results by config hash

	f.Fuzz(func(t *testing.T, vhost, port, protocol, https, hsts, def, network, address string) {
		labels := map[string]string{
			routing.LabelVhost: vhost, routing.LabelPort: port, routing.LabelProtocol: protocol,
			routing.LabelHTTPS: https, routing.LabelHSTS: hsts, routing.LabelDefault: def, routing.LabelNetwork: network,
			routing.LabelAddress: address,
		}
		// The fuzzed container runs on another node than the proxy's,
		// which advertises an address and publishes the seeds' ports.
		var ports []store.Port
		for _, p := range []int{80, 443, 1, 8080, 50051} {
			ports = append(ports, store.Port{Port: p, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 30000 + p%1000},
				store.Port{Port: p, Proto: "tcp", HostIP: "::", HostPort: 30000 + p%1000})
		}
		cs := []store.Container{
			{ID: "f1", Name: "fuzzed", Host: "n2", HostAddr: "10.0.1.2", Ports: ports, State: "running", Labels: labels,
				Networks: map[string]store.Network{"bridge": {IPv4: "10.0.0.2"}, network: {IPv4: "10.0.0.3", IPv6: "fd00::3"}}},
			{ID: "f2", Name: "other", Host: "n1", State: "running",
				Labels:   map[string]string{routing.LabelVhost: "other.example.com", routing.LabelDefault: "true"},
				Networks: map[string]store.Network{"bridge": {IPv4: "10.0.0.4"}}},
		}
		res := routing.Build(cs, routing.Options{Network: "bridge", Node: "n1"})
		cert := cert
		cert.Names = nil
		for _, r := range res.Routes {
			cert.Names = append(cert.Names, r.Host)
		}
		conf, err := Render(Input{
			Routes:   res.Routes,
			Certs:    []CertRef{cert},
			Settings: Settings{HTTPAddrs: []string{":80"}, HTTPSAddrs: []string{":443"}, IncludeDir: "/nonexistent/portico", NginxVersion: "1.22.1"},
		})
		if err != nil {
			t.Fatalf("routing.Build gave routes Render refuses: %v\nroutes: %+v", err, res.Routes)
		}
		h := hash(conf)
		mu.Lock()
		ok := accepted[h]
		mu.Unlock()
		if ok {
			return
		}
		if out, err := nginxTestConf(t, conf); err != nil {
			t.Fatalf("nginx -t refused the config: %v\n%s\n%s", err, out, conf)
		}
		mu.Lock()
		accepted[h] = true
		mu.Unlock()
	})
}
