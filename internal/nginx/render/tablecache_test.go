package render

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/portico/portico/internal/nginx/dynamic"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// TestTableCacheEquivalent drives a TableCache through random sequences of
// container adds, changes and deletes (routes built by routing.Build:
// first-claimant conflicts, path prefixes, wildcards, redirects, defaults,
// rejected claims), routes broken after the build (a bad host, protocol or
// upstream: check and table errors), certificate changes and settings
// changes, and checks after every step that its results are exactly
// CheckRoutes', DynamicTable's and EncodeTable's, and that the delta from
// the previous table is the same.
func TestTableCacheEquivalent(t *testing.T) {
	hosts := []string{"a.test", "b.test", "c.test", "*.w.test", "x.w.test", "y.w.test", "d.test", "e.test"}
	paths := []string{"", "/", "/api/", "/api/v2/", "/static/"}
	settings := []Settings{
		{HTTPAddrs: []string{":80"}, NginxVersion: "1.26.0"},
		{HTTPAddrs: []string{":80"}, HTTPSAddrs: []string{":443"}, NginxVersion: "1.26.0"},
		{HTTPAddrs: []string{":8080"}, HTTPSAddrs: []string{":8443"}, NginxVersion: "1.26.0"},
	}
	certSets := [][]CertRef{
		nil,
		{{Primary: "a.test", Names: []string{"a.test", "b.test"}, FullChain: "chain-a", Key: "key-a"}},
		{{Primary: "a.test", Names: []string{"a.test"}, FullChain: "chain-a2", Key: "key-a2"},
			{Primary: "w.test", Names: []string{"*.w.test"}, FullChain: "chain-w", Key: "key-w", Local: true}},
	}
	for seed := uint64(1); seed <= 60; seed++ {
		rng := rand.New(rand.NewPCG(seed, 17))
		var c TableCache
		cs := map[string]store.Container{}
		st, refs := settings[0], certSets[0]
		var prevFull, prevCached dynamic.Encoded
		var rev int64
		for step := range 80 {
			switch k := rng.IntN(20); {
			case k < 12: // add or change a container
				id := fmt.Sprintf("%02d", rng.IntN(12))
				rev++
				labels := map[string]string{}
				vh := hosts[rng.IntN(len(hosts))]
				if rng.IntN(4) == 0 {
					vh += "," + hosts[rng.IntN(len(hosts))]
				}
				labels[routing.LabelVhost] = vh
				if p := paths[rng.IntN(len(paths))]; p != "" {
					labels[routing.LabelPath] = p
					if rng.IntN(3) == 0 {
						labels[routing.LabelStripPath] = "true"
					}
				}
				labels[routing.LabelHTTPS] = []string{"auto", "off", "redirect", "both"}[rng.IntN(4)]
				if rng.IntN(5) == 0 {
					labels[routing.LabelHSTS] = "false"
				}
				if rng.IntN(6) == 0 {
					labels[routing.LabelDefault] = "true"
				}
				if rng.IntN(6) == 0 {
					labels[routing.LabelProtocol] = "https"
				}
				if rng.IntN(8) == 0 {
					labels[routing.LabelRedirectFrom] = "old-" + id + ".test"
				}
				if rng.IntN(8) == 0 {
					labels[routing.LabelMaxBody] = "5m"
				}
				created := rev
				if old, ok := cs[id]; ok {
					created = old.CreateRevision
				}
				cs[id] = store.Container{ID: id, Name: "/app-" + id, Host: "node", State: "running",
					ModRevision: rev, CreateRevision: created, Labels: labels,
					Networks: map[string]store.Network{"proxy": {IPv4: fmt.Sprintf("10.0.0.%d", rng.IntN(3)+1)}},
					Ports:    []store.Port{{Port: 80 + rng.IntN(2), Proto: "tcp"}}}
			case k < 16: // delete one
				delete(cs, fmt.Sprintf("%02d", rng.IntN(12)))
			case k < 18:
				refs = certSets[rng.IntN(len(certSets))]
			default:
				st = settings[rng.IntN(len(settings))]
			}
			list := make([]store.Container, 0, len(cs))
			for _, x := range cs {
				list = append(list, x)
			}
			routes := routing.Build(list, routing.Options{Network: "proxy"}).Routes
			// Break some routes after the build, as a bug or a hostile
			// record could: check errors and table errors.
			for i := range routes {
				switch rng.IntN(40) {
				case 0:
					routes[i].Protocol = "bogus"
				case 1:
					routes[i].Upstreams = append(routes[i].Upstreams, "not an address")
				case 2:
					routes[i].Host = "bad host"
				}
			}
			name := fmt.Sprintf("seed %d step %d", seed, step)

			wantOK, wantErrs := CheckRoutes(routes)
			gotOK, gotErrs := c.CheckRoutes(routes)
			if !reflect.DeepEqual(gotOK, wantOK) || fmt.Sprint(gotErrs) != fmt.Sprint(wantErrs) {
				t.Fatalf("%s: CheckRoutes differs:\ngot  %v %v\nwant %v %v", name, gotOK, gotErrs, wantOK, wantErrs)
			}
			// The table of the checked routes, as the stage builds it, and
			// of the unchecked ones (table errors).
			in := wantOK
			if rng.IntN(4) == 0 {
				in = routes
			}
			var want dynamic.Encoded
			tab, wantCerts, wantErr := DynamicTable(in, refs, st, "/certs")
			if wantErr == nil {
				want, wantErr = tab.EncodeTable()
			}
			got, gotCerts, gotErr := c.Table(in, refs, st, "/certs")
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Fatalf("%s: table error %v, want %v", name, gotErr, wantErr)
			}
			if wantErr != nil {
				continue
			}
			if !bytes.Equal(got.Body, want.Body) || got.Version != want.Version {
				t.Fatalf("%s: table\n%s\nwant\n%s", name, got.Body, want.Body)
			}
			if !reflect.DeepEqual(gotCerts, wantCerts) {
				t.Fatalf("%s: certs %v, want %v", name, gotCerts, wantCerts)
			}
			if prevFull.Version != "" {
				wd, _ := dynamic.Delta(prevFull, want, nil)
				gd, _ := dynamic.Delta(prevCached, got, nil)
				if !bytes.Equal(gd, wd) {
					t.Fatalf("%s: delta\n%s\nwant\n%s", name, gd, wd)
				}
			}
			prevFull, prevCached = want, got
		}
	}
}
