package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/portico/portico/internal/certs/localca"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// putRecord writes a container record as a reporter on host
// "synthetic-<run>" would: id routed as vhost to ip:80 on network; with
// httpsOff the certs stage issues nothing for it.
func putRecord(b *testing.B, r *run, runID, network, id, vhost, ip string, httpsOff bool) {
	b.Helper()
	labels := map[string]string{"portico.vhost": vhost}
	if httpsOff {
		labels["portico.https"] = "off"
	}
	c := store.Container{ID: id, Name: id, Host: "synthetic-" + runID, Image: "synthetic", State: "running", Labels: labels,
		Networks: map[string]store.Network{network: {IPv4: ip}}, Ports: []store.Port{{Port: 80, Proto: "tcp"}}}
	v, err := store.Encode(c)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.cli.Put(ctx, r.keys.Container(c.Host, id), string(v)); err != nil {
		b.Fatalf("put record %s: %v", id, err)
	}
}

// deleteRecord deletes what putRecord wrote.
func deleteRecord(b *testing.B, r *run, runID, id string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.cli.Delete(ctx, r.keys.Container("synthetic-"+runID, id)); err != nil {
		b.Fatalf("delete record %s: %v", id, err)
	}
}

// reloads reads portico_nginx_reloads_total.
func reloads(b *testing.B, r *run) float64 {
	b.Helper()
	v, err := metric(r.metrics, "portico_nginx_reloads_total")
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkI10ReloadsPer100Changes (issue 10, "no reloads"): 100 route and
// certificate changes, 20 rounds of: add a vhost, a replica joins another
// vhost, a certificate swap (a new local-CA certificate for a .test name
// written over its bundle, as a renewal does), the replica leaves, the
// vhost is removed. Each change is waited for until a client sees it (200;
// the new replica answers; the new serial is served; only the old replica
// answers; 404), then the next one follows at once. Counts
// portico_nginx_reloads_total across the 100 (goal: 0).
func BenchmarkI10ReloadsPer100Changes(b *testing.B) {
	for b.Loop() {
		d := newDocker(b)
		net := d.Network(b, "i10rl")
		img := d.Image(b)
		r, httpsAddr := startRunTLS(b, d, net)
		main := "i10rl-main-" + d.RunID + ".test"
		d.Run(b, dockertest.RunOptions{Name: "i10rl1", Image: img, Network: net, Labels: map[string]string{"portico.vhost": main, "portico.https": "off"}})
		_, ip1 := backend(b, d, net, "i10rl1x", nil) // only for synthetic records
		_, ip2 := backend(b, d, net, "i10rl2", nil)
		name2 := "name=" + d.Name("i10rl2") + " "
		waitLive(b, r, main)
		certHost := "i10rl-cert-" + d.RunID + ".test"
		putRecord(b, r, d.RunID, net, "certsite", certHost, ip1, false)
		roots := localCARoots(b, r)
		waitLiveTLS(b, httpsAddr, certHost, roots, time.Minute)
		ca := localca.New(r.cli, r.keys, localca.Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()

		// A pacing window at rest, then count.
		<-time.After(2500 * time.Millisecond)
		before := reloads(b, r)
		var took []time.Duration
		kinds := []string{"add vhost", "replica joins", "certificate swap", "replica leaves", "remove vhost"}
		perKind := map[string][]time.Duration{}
		t0 := time.Now()
		for round := range 20 {
			host := fmt.Sprintf("i10rl-%02d-%s.test", round, d.RunID)
			id := fmt.Sprintf("vhost%02d", round)
			for _, k := range kinds {
				c0 := time.Now()
				switch k {
				case "add vhost":
					putRecord(b, r, d.RunID, net, id, host, ip1, true)
					porticotest.Eventually(b, 30*time.Second, k, func() error {
						code, _, err := get(r.http, host)
						if err == nil && code != 200 {
							err = fmt.Errorf("%s: %d", host, code)
						}
						return err
					})
				case "replica joins":
					putRecord(b, r, d.RunID, net, "replica", main, ip2, true)
					porticotest.Eventually(b, 30*time.Second, k, func() error {
						_, body, err := get(r.http, main)
						if err == nil && !strings.Contains(body, name2) {
							err = fmt.Errorf("not the new replica: %q", body)
						}
						return err
					})
				case "certificate swap":
					nb, err := ca.Obtain(ctx, []string{certHost})
					if err != nil {
						b.Fatal(err)
					}
					v, err := store.Encode(nb)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := r.cli.Put(ctx, r.keys.CertBundle(certHost), string(v)); err != nil {
						b.Fatal(err)
					}
					porticotest.Eventually(b, 30*time.Second, k, func() error {
						code, _, leaf, err := porticotest.GetTLS(httpsAddr, certHost, roots)
						if err == nil && (code != 200 || leaf == nil || leaf.SerialNumber.Text(16) != nb.Serial) {
							err = fmt.Errorf("%s: %d, serial not %s yet", certHost, code, nb.Serial)
						}
						return err
					})
				case "replica leaves":
					deleteRecord(b, r, d.RunID, "replica")
					porticotest.Eventually(b, 30*time.Second, k, func() error {
						// Round robin over two peers alternates: 6 answers in a
						// row from the first mean the second is gone.
						for range 6 {
							_, body, err := get(r.http, main)
							if err != nil {
								return err
							}
							if strings.Contains(body, name2) {
								return fmt.Errorf("the replica still answers")
							}
						}
						return nil
					})
				case "remove vhost":
					deleteRecord(b, r, d.RunID, id)
					porticotest.Eventually(b, 30*time.Second, k, func() error {
						code, _, err := get(r.http, host)
						if err == nil && code != 404 {
							err = fmt.Errorf("%s: %d", host, code)
						}
						return err
					})
				}
				took = append(took, time.Since(c0))
				perKind[k] = append(perKind[k], time.Since(c0))
			}
		}
		total := time.Since(t0)
		// A reload already decided may still be on its way: let one pacing
		// window pass before reading the count.
		<-time.After(2500 * time.Millisecond)
		n := reloads(b, r) - before
		var byKind []string
		for _, k := range kinds {
			byKind = append(byKind, fmt.Sprintf("%s p50=%s", k, percentile(perKind[k], 0.5).Round(time.Millisecond)))
		}
		b.Logf("I10 reloads: %d changes (20 x add vhost, replica join, certificate swap, replica leave, remove vhost) over %s: %.0f reloads = %.2f per change (goal 0); each change seen by a client after p50=%s p99=%s (%s)",
			len(took), total.Round(time.Millisecond), n, n/float64(len(took)), percentile(took, 0.5).Round(time.Millisecond), percentile(took, 0.99).Round(time.Millisecond), strings.Join(byKind, ", "))
		b.ReportMetric(n, "reloads/100-changes")
	}
}

// BenchmarkI10NoFailedRequests (issue 10, "no failed requests"): wrk
// (keep-alive, no retries) on one vhost for 35 s while 15 vhosts are added,
// 5 removed and a replica of the loaded vhost joins and leaves 15 times (35
// changes, one every 800 ms); meanwhile a websocket open on another vhost
// echoes a message every 250 ms. Reports wrk's errors and non-2xx, the
// reloads, and whether (and when) the websocket broke. Goals: 0 failed, the
// websocket survives.
func BenchmarkI10NoFailedRequests(b *testing.B) {
	wrk := needWrk(b)
	for b.Loop() {
		d := newDocker(b)
		net := d.Network(b, "i10nf")
		img := d.Image(b)
		r := startRunOwn(b, d, net)
		host := "i10nf-load-" + d.RunID + ".test"
		wsHost := "i10nf-ws-" + d.RunID + ".test"
		d.Run(b, dockertest.RunOptions{Name: "i10nfa", Image: img, Network: net, Labels: map[string]string{"portico.vhost": host, "portico.https": "off"}})
		d.Run(b, dockertest.RunOptions{Name: "i10nfws", Image: img, Network: net, Labels: map[string]string{"portico.vhost": wsHost, "portico.https": "off"}})
		_, ipB := backend(b, d, net, "i10nfb", nil)
		waitLive(b, r, host)
		waitLive(b, r, wsHost)
		ws, err := dialWS(r.http, wsHost)
		if err != nil {
			b.Fatal(err)
		}
		defer ws.Close()
		if err := ws.echo("hello", 5*time.Second); err != nil {
			b.Fatal(err)
		}
		// c=16, each connection waits 2 ms between requests: a steady load
		// well under the box's maximum (P4 measured ~37k req/s at c=16).
		script := filepath.Join(b.TempDir(), "delay.lua")
		if err := os.WriteFile(script, []byte("function delay() return 2 end\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		<-time.After(2500 * time.Millisecond)
		before := reloads(b, r)

		type op struct {
			what string
			do   func()
		}
		var ops []op
		joined := false
		for i := range 15 {
			id, vh := fmt.Sprintf("nf%02d", i), fmt.Sprintf("i10nf-%02d-%s.test", i, d.RunID)
			ops = append(ops, op{"add " + vh, func() { putRecord(b, r, d.RunID, net, id, vh, ipB, true) }})
			if joined {
				ops = append(ops, op{"replica leaves", func() { deleteRecord(b, r, d.RunID, "replica") }})
			} else {
				ops = append(ops, op{"replica joins", func() { putRecord(b, r, d.RunID, net, "replica", host, ipB, true) }})
			}
			joined = !joined
			if i%3 == 2 {
				rid := fmt.Sprintf("nf%02d", i-2)
				ops = append(ops, op{"remove " + rid, func() { deleteRecord(b, r, d.RunID, rid) }})
			}
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		start := time.Now()
		wg.Go(func() {
			// The changes' schedule (a load generator's, not a sync).
			for i, o := range ops {
				select {
				case <-stop:
					return
				case <-time.After(time.Until(start.Add(time.Second + time.Duration(i)*800*time.Millisecond))):
				}
				o.do()
			}
		})
		var wsBroke atomic.Value
		var wsEchoes atomic.Int64
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(250 * time.Millisecond):
				}
				if err := ws.echo(fmt.Sprintf("m%d", i), 5*time.Second); err != nil {
					so := "?"
					if v, merr := metric(r.metrics, "portico_nginx_reloads_total"); merr == nil {
						so = fmt.Sprintf("%.0f", v-before)
					}
					wsBroke.Store(fmt.Sprintf("%s after the changes began, %s reloads in: %v", time.Since(start).Round(time.Millisecond), so, err))
					return
				}
				wsEchoes.Add(1)
			}
		})
		res := runWrk(b, wrk, r.http, host, 16, 35*time.Second, script)
		close(stop)
		wg.Wait()
		n := reloads(b, r) - before
		survived := "survived"
		if v := wsBroke.Load(); v != nil {
			survived = "BROKE " + v.(string)
		}
		b.Logf("I10 no failed requests: wrk c=16 35 s keep-alive: %.0f requests, %d non-2xx, %d socket errors (%s); %d changes (15 vhosts added, 5 removed, 15 replica joins/leaves on the loaded vhost): %.0f reloads; websocket on another vhost: %s (%d echoes) (goal: 0 failed, the websocket survives)",
			res.reqs, res.non2xx, res.sockErrors, reSockErr.FindString(res.raw), len(ops), n, survived, wsEchoes.Load())
		b.ReportMetric(float64(res.non2xx+res.sockErrors), "failed")
		b.ReportMetric(n, "reloads")
		if wsBroke.Load() == nil {
			b.ReportMetric(1, "ws-survived")
		} else {
			b.ReportMetric(0, "ws-survived")
		}
	}
}

// BenchmarkI10StopWindow (issue 10, "a stopping container leaves the
// rotation"): a vhost with two real replicas (beside 0 or 1,000 other
// routes, which make each reload longer) under 8 clients that send one
// request per connection and never retry; one replica is `docker stop`ped
// (the backend exits at SIGTERM) three times, each time started again once
// the rest has settled. Counts, from each stop's start for 8 s (and at
// least 3 s after the stop returned), the
// non-2xx by status, the errors and the responses slower than 1 s. Goal: no
// 504, no 5 s hang (a 503 at once is allowed).
func BenchmarkI10StopWindow(b *testing.B) {
	for _, g := range []struct {
		others int
		hang   time.Duration
	}{{0, 0}, {1000, 0}, {0, 5 * time.Second}} {
		b.Run(fmt.Sprintf("others=%d/hang=%s", g.others, g.hang), func(b *testing.B) {
			for b.Loop() {
				stopWindow(b, g.others, g.hang)
			}
		})
	}
}

// stopWindow runs one group of BenchmarkI10StopWindow: others synthetic
// routes beside; with hang > 0 the replicas answer nothing for that long
// after SIGTERM before they exit (HANG_ON_TERM), and are stopped with
// Docker's default 10 s timeout.
func stopWindow(b *testing.B, others int, hang time.Duration) {
	d := newDocker(b)
	net := d.Network(b, "i10sw")
	img := d.Image(b)
	r := startRunOwn(b, d, net)
	if others > 0 {
		_, ip := backend(b, d, net, "synthback", nil)
		writeSynthetic(b, r, d.RunID, net, ip, 0, others)
		waitRoutes(b, r, others, 2*time.Minute)
	}
	host := "i10sw-" + d.RunID + ".test"
	labels := map[string]string{"portico.vhost": host, "portico.https": "off"}
	var env []string
	if hang > 0 {
		env = []string{"HANG_ON_TERM=" + hang.String()}
	}
	d.Run(b, dockertest.RunOptions{Name: "i10sw1", Image: img, Network: net, Labels: labels, Env: env})
	id2 := d.Run(b, dockertest.RunOptions{Name: "i10sw2", Image: img, Network: net, Labels: labels, Env: env})
	name2 := "name=" + d.Name("i10sw2") + " "
	bothServe := func(what string) {
		porticotest.Eventually(b, time.Minute, what, func() error {
			for range 6 {
				_, body, err := get(r.http, host)
				if err != nil {
					return err
				}
				if strings.Contains(body, name2) {
					return nil
				}
			}
			return fmt.Errorf("replica 2 does not answer")
		})
	}
	bothServe("both replicas serve")

	type result struct {
		at   time.Time
		took time.Duration
		code int
		err  string
	}
	var mu sync.Mutex
	var results []result
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", "http://"+r.http+"/", nil)
				req.Host = host
				t0 := time.Now()
				resp, err := c.Do(req)
				res := result{at: t0}
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					res.code = resp.StatusCode
				} else {
					res.err = err.Error()
				}
				res.took = time.Since(t0)
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
				<-time.After(10 * time.Millisecond)
			}
		})
	}
	type window struct{ from, to time.Time }
	var windows []window
	for range 3 {
		<-time.After(3 * time.Second) // at rest, both replicas serving
		w := window{from: time.Now()}
		if hang > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			timeout := 10 // Docker's default
			_, err := d.Client.ContainerStop(ctx, id2, client.ContainerStopOptions{Timeout: &timeout})
			cancel()
			if err != nil {
				b.Fatalf("stop %s: %v", id2, err)
			}
		} else {
			d.Stop(b, id2)
		}
		// The window: 8 s from the stop, and at least 3 s after it returned.
		<-time.After(max(time.Until(w.from.Add(8*time.Second)), 3*time.Second))
		w.to = time.Now()
		windows = append(windows, w)
		d.Start(b, id2)
		bothServe("replica 2 back")
	}
	close(stop)
	wg.Wait()
	codes := map[string]int{}
	total, slow := 0, 0
	var maxTook time.Duration
	for _, res := range results {
		in := false
		for _, w := range windows {
			if !res.at.Before(w.from) && res.at.Before(w.to) {
				in = true
			}
		}
		if !in {
			continue
		}
		total++
		switch {
		case res.err != "":
			codes["error"]++
		case res.code != 200:
			codes[fmt.Sprint(res.code)]++
		}
		if res.took > time.Second {
			slow++
		}
		maxTook = max(maxTook, res.took)
	}
	var cs []string
	for k, v := range codes {
		cs = append(cs, fmt.Sprintf("%s: %d", k, v))
	}
	sort.Strings(cs)
	b.Logf("I10 stop window [others=%d hang=%s]: 3 x `docker stop` of one of two replicas under 8 clients (one request per connection, no retry): %d requests in the windows (from each stop's start, 8 s and at least 3 s after it returned); failed by status %v (%d x 504); %d slower than 1 s; slowest %s (goal: no 504, no slow response; a 503 at once allowed)",
		others, hang, total, cs, codes["504"], slow, maxTook.Round(time.Millisecond))
	b.ReportMetric(float64(codes["504"]), "504s")
	b.ReportMetric(float64(slow), "slow>1s")
}
