package nginx

import (
	"fmt"
	"testing"
	"time"

	"github.com/portico/portico/internal/nginx/dynamic"
	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// BenchmarkChangeCost is the Go side of one change on the dynamic path at
// 200 and 10,000 routes, step by step as Stage.sync runs them (no etcd, no
// nginx): the routing build (with the stage's Memo), CheckRoutes, the
// table, its encoding and the delta. It is the profile behind
// docs/scale.md:
//
//	go test -run '^$' -bench ChangeCost -benchtime 20x ./internal/nginx/
func BenchmarkChangeCost(b *testing.B) {
	for _, n := range []int{200, 10000} {
		cs := make([]store.Container, n)
		for i := range cs {
			cs[i] = store.Container{ID: fmt.Sprintf("%064x", i+1), Name: fmt.Sprintf("app-%06d", i), Host: fmt.Sprintf("dockerhost%02d", i%50),
				Image: "registry.example/app:1.0", State: "running", ModRevision: int64(i + 1), CreateRevision: int64(i + 1),
				Labels:   map[string]string{routing.LabelVhost: fmt.Sprintf("c%06d.test", i), routing.LabelHTTPS: "off"},
				Networks: map[string]store.Network{"proxy": {IPv4: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)}},
				Ports:    []store.Port{{Port: 80, Proto: "tcp"}}}
		}
		opts := routing.Options{Network: "proxy"}
		st := render.Settings{HTTPAddrs: []string{":80"}, NginxVersion: "1.26.0"}
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			memo := routing.NewMemo(opts)
			res := memo.Build(cs)
			tab, _, err := render.DynamicTable(res.Routes, nil, st, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			prev, err := tab.EncodeTable()
			if err != nil {
				b.Fatal(err)
			}
			var steps [5]time.Duration
			for i := 0; b.Loop(); i++ {
				cs[i%n].Labels = map[string]string{routing.LabelVhost: fmt.Sprintf("changed%d.test", i), routing.LabelHTTPS: "off"}
				cs[i%n].ModRevision = int64(n + i + 1)
				t0 := time.Now()
				res := memo.Build(cs)
				t1 := time.Now()
				routes, _ := render.CheckRoutes(res.Routes)
				t2 := time.Now()
				tab, _, err := render.DynamicTable(routes, nil, st, "/nonexistent")
				if err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				enc, err := tab.EncodeTable()
				if err != nil {
					b.Fatal(err)
				}
				t4 := time.Now()
				body, _ := dynamic.Delta(prev, enc, nil)
				t5 := time.Now()
				if len(body) > 1000 {
					b.Fatalf("delta of %d bytes", len(body))
				}
				prev = enc
				for k, d := range []time.Duration{t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3), t5.Sub(t4)} {
					steps[k] += d
				}
			}
			for k, name := range []string{"build", "check", "table", "encode", "delta"} {
				b.ReportMetric(float64(steps[k].Microseconds())/float64(b.N), name+"-us")
			}
		})
	}
}
