package explain

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// fingerprint matches the certificate fingerprint in a server block: the
// test certificates are generated per run.
var fingerprint = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// certID matches a certificate's content id in a dynamic table line.
var certID = regexp.MustCompile(`\| [0-9a-f]{32} \|`)

// TestGolden pins the text output of a served name, a conflict over a
// wildcard name and a name nobody claims.
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		file  string
		host  string
		setup func(w *world)
	}{{
		file: "served.golden",
		host: "web.test",
		setup: func(w *world) {
			w.container("c1", "web", map[string]string{routing.LabelVhost: "web.test,www.web.test", routing.LabelPort: "8080", routing.LabelHSTS: "true"})
			w.container("c2", "web-2", map[string]string{routing.LabelVhost: "web.test", routing.LabelPort: "8080", routing.LabelHSTS: "true", "portico.vhots": "typo"})
			w.bundle(store.IssuerLocal, "web.test", "www.web.test")
			w.applied("n1", w.routes(proxy)...)
			w.put(keys.NginxStatus("n2"), store.NginxStatus{Instance: "n2", Applied: "fedcba9876543210", Routes: 0})
		},
	}, {
		file: "conflict-wildcard.golden",
		host: "shop.example.com",
		setup: func(w *world) {
			w.container("c1", "wild", map[string]string{routing.LabelVhost: "*.example.com"})
			w.container("c2", "grpc", map[string]string{routing.LabelVhost: "*.example.com", routing.LabelProtocol: "grpc"})
			w.bundle(store.IssuerACME, "*.example.com", "example.com")
			w.applied("n1")
		},
	}, {
		file: "paths.golden",
		host: "app.test",
		setup: func(w *world) {
			w.container("c1", "root", map[string]string{routing.LabelVhost: "app.test"})
			w.container("c2", "api", map[string]string{routing.LabelVhost: "app.test", routing.LabelPath: "/api/", routing.LabelStripPath: "true"})
			w.container("c3", "api-grpc", map[string]string{routing.LabelVhost: "app.test", routing.LabelPath: "/api/", routing.LabelProtocol: "grpc"})
			w.bundle(store.IssuerLocal, "app.test")
			w.applied("n1", w.routes(proxy)...)
		},
	}, {
		file: "unclaimed.golden",
		host: "nobody.test",
		setup: func(w *world) {
			w.container("c1", "web", map[string]string{routing.LabelVhost: "web.test"})
			w.raw(keys.Container("h1", "junk"), "{not json")
		},
	}} {
		t.Run(tc.file, func(t *testing.T) {
			w := newWorld(t)
			tc.setup(w)
			x := w.explain(tc.host, proxy)
			var b bytes.Buffer
			if err := x.WriteText(&b, now); err != nil {
				t.Fatal(err)
			}
			got := fingerprint.ReplaceAll(b.Bytes(), []byte("sha256:<fingerprint>"))
			got = certID.ReplaceAll(got, []byte("| <certificate id> |"))
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -run TestGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("text differs from %s (go test -run TestGolden -update to accept):\n%s", path, got)
			}
			var j bytes.Buffer
			if err := x.WriteJSON(&j); err != nil {
				t.Fatal(err)
			}
			var back Explanation
			if err := json.Unmarshal(j.Bytes(), &back); err != nil {
				t.Fatalf("JSON does not parse: %v\n%s", err, j.String())
			}
			if back.Summary != x.Summary || len(back.Claims) != len(x.Claims) || back.Served != x.Served {
				t.Errorf("JSON round trip lost data: %+v", back)
			}
			if strings.Contains(j.String(), "PRIVATE KEY") || strings.Contains(b.String(), "PRIVATE KEY") {
				t.Error("a private key reached the output")
			}
		})
	}
}
