package routing

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/portico/portico/internal/store"
)

// TestIncrementalEquivalent drives an Incremental through random sequences
// of record adds, changes and deletes and checks after every step that its
// routes and problems are exactly Build's for the same records. The
// records share a few vhosts (first-claimant conflicts on HTTPS, HSTS,
// protocol and path settings), path prefixes, wildcards, redirect-from
// names (whose claims depend on the first vhost's), defaults, parse
// errors, records the reporter rejected, unknown revisions (0, parsed
// every time), a host's records all gone and back (a host expired, then
// live again), two records of one container, and an address that becomes
// the proxy host's own and stops being it.
func TestIncrementalEquivalent(t *testing.T) {
	names := []string{"a.test", "b.test", "c.test", "*.w.test", "x.w.test", "old.test", "d.test"}
	paths := []string{"", "/", "/api/", "/api/v2/"}
	for seed := uint64(1); seed <= 150; seed++ {
		rng := rand.New(rand.NewPCG(seed, 5))
		local := netip.Addr{}
		opts := Options{Network: "proxy", LocalAddr: func(a netip.Addr) bool { return a == local }}
		inc := NewIncremental(opts)
		cs := map[string]store.Container{} // by node/id
		var rev int64
		var gone []store.Container // an expired node's records
		for step := range 60 {
			switch k := rng.IntN(24); {
			case k < 14:
				node := fmt.Sprintf("n%d", rng.IntN(2))
				id := fmt.Sprintf("%02d", rng.IntN(10))
				rev++
				l := map[string]string{}
				vh := names[rng.IntN(len(names))]
				if rng.IntN(3) == 0 {
					vh += "," + names[rng.IntN(len(names))]
				}
				l[LabelVhost] = vh
				if p := paths[rng.IntN(len(paths))]; p != "" {
					l[LabelPath] = p
				}
				if rng.IntN(4) == 0 {
					l[LabelHTTPS] = "off"
				}
				if rng.IntN(6) == 0 {
					l[LabelHSTS] = "false"
				}
				if rng.IntN(6) == 0 {
					l[LabelProtocol] = "https"
				}
				if rng.IntN(5) == 0 {
					l[LabelDefault] = "true"
				}
				if rng.IntN(4) == 0 {
					l[LabelRedirectFrom] = []string{"old.test", "r1.test", "b.test", "r2.test,r1.test"}[rng.IntN(4)]
				}
				if rng.IntN(12) == 0 {
					l[LabelPort] = "notaport" // a parse error
				}
				c := store.Container{ID: id, Name: "/app-" + id, Host: node, State: "running", Labels: l,
					ModRevision: rev, CreateRevision: rev,
					Networks: map[string]store.Network{"proxy": {IPv4: fmt.Sprintf("10.0.0.%d", rng.IntN(3)+1)}},
					Ports:    []store.Port{{Port: 80, Proto: "tcp"}}}
				if old, ok := cs[node+"/"+id]; ok && rng.IntN(3) > 0 {
					c.CreateRevision = old.CreateRevision
				}
				if rng.IntN(15) == 0 {
					c.ModRevision = 0
				}
				if rng.IntN(15) == 0 {
					c.CreateRevision = 0
				}
				if rng.IntN(20) == 0 {
					c.Rejected = "too large"
				}
				if rng.IntN(6) == 0 {
					c.State = "exited"
				}
				cs[node+"/"+id] = c
			case k < 18:
				delete(cs, fmt.Sprintf("n%d/%02d", rng.IntN(2), rng.IntN(10)))
			case k < 20: // node n1 expires (its records leave), or comes back
				if gone == nil {
					for key, c := range cs {
						if c.Host == "n1" {
							gone = append(gone, c)
							delete(cs, key)
						}
					}
				} else {
					for _, c := range gone {
						cs[c.Host+"/"+c.ID] = c
					}
					gone = nil
				}
			case k < 22: // the proxy's own address changes
				local = []netip.Addr{{}, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}[rng.IntN(3)]
			default: // nothing changed
			}
			list := make([]store.Container, 0, len(cs)+1)
			for _, c := range cs {
				list = append(list, c)
			}
			rng.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
			if len(list) > 0 && rng.IntN(30) == 0 {
				dup := list[0]
				dup.Name += "-dup"
				list = append(list, dup) // two records of one container
			}
			want := Build(slices.Clone(list), opts)
			got := inc.Build(list)
			name := fmt.Sprintf("seed %d step %d", seed, step)
			if !reflect.DeepEqual(got.Routes, want.Routes) {
				t.Fatalf("%s: routes\n%+v\nwant\n%+v", name, got.Routes, want.Routes)
			}
			if !reflect.DeepEqual(got.Problems, want.Problems) {
				t.Fatalf("%s: problems\n%v\nwant\n%v", name, got.Problems, want.Problems)
			}
		}
	}
}
