package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
	"github.com/portico/portico/internal/testenv/etcdcluster"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// raceCerts is how many new certificates the race is about (the first with
// a second name).
const raceCerts = 5

// racePickupGoal is how soon after a certificate is stored every proxy
// should serve it (issue 17 §4). It is a figure this test logs and
// docs/benchmarks.md records, not an assertion: a loaded CI box drifts 2-3x
// (the house rule: speed goals live in measurements, not timed tests).
// Serving it at all, within the 10 s poll, is asserted.
const racePickupGoal = time.Second

// TestCertsRaceOneOrderEach: three `portico certs` processes on a
// three-member TLS etcd cluster race for five new certificates whose
// container records appear in one etcd transaction (written straight into
// etcd in the reporter's record shape, all pointing at one real container);
// three `portico nginx` stages (two on the dynamic path, one on the static
// path) serve them, Pebble validating http-01 through the first proxy.
// Asserted: Pebble created exactly one order per certificate (its log:
// as many orders as certificates, each stored serial issued by its own
// order); each bundle key was put once; every proxy completed a TLS
// handshake with SNI, verified against Pebble's root and serving the stored
// serial, within 10 s of the put, and the time it took is logged against
// the 1 s goal (polled every 20 ms from the moment the test's own watch saw
// the put); the sites answer 200 over HTTPS on every
// proxy, SAN included.
func TestCertsRaceOneOrderEach(t *testing.T) {
	t.Parallel()
	began := time.Now()
	c := etcdcluster.Start(t, raceEtcdBinary(t), 3, true)
	cli := c.Client(t)
	keys := store.NewKeys(store.DefaultPrefix)
	d := dockertest.New(t)
	network := d.Network(t, "race")
	upID := d.Run(t, dockertest.RunOptions{Name: "up", Network: network})
	upIP := d.IP(t, upID, network)

	portA := freePort(t)
	a := startHTTP01ACME(t, portA) // Pebble's http-01 requests go to proxy A

	type proxy struct{ name, http, https string }
	proxies := []proxy{
		{"a-dynamic", addr(portA), addr(freePort(t))},
		{"b-dynamic", addr(freePort(t)), addr(freePort(t))},
		{"c-static", addr(freePort(t)), addr(freePort(t))},
	}
	for _, p := range proxies {
		dynamic := "on"
		if strings.HasSuffix(p.name, "static") {
			dynamic = "off"
		}
		start(t, nil, append([]string{"nginx", "--data-dir", t.TempDir(), "--http-addr", p.http, "--https-addr", p.https,
			"--network", network, "--instance", p.name + "-" + d.RunID, "--nginx-dynamic", dynamic, "--log-level", "debug"},
			c.Flags()...)...)
	}
	var certsMetrics []string
	for range 3 {
		m := addr(freePort(t))
		certsMetrics = append(certsMetrics, m)
		start(t, nil, append(append([]string{"certs", "--network", network, "--metrics-addr", m, "--log-level", "debug"},
			c.Flags()...), a.flags...)...)
	}
	for _, p := range proxies {
		waitDefault404(t, p.http)
	}
	for _, m := range certsMetrics {
		eventually(t, 30*time.Second, "certs stage serves its metrics on "+m, func() error {
			_, err := raceCertsSeen(m)
			return err
		})
	}

	// The test's own watch of the bundles, from before the records.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	now, err := cli.Get(ctx, keys.CertData(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	puts := make(chan racePut, 64)
	wch := cli.Watch(ctx, keys.CertData(), clientv3.WithPrefix(), clientv3.WithRev(now.Header.Revision+1))
	go func() {
		for wr := range wch {
			at := time.Now()
			for _, ev := range wr.Events {
				if ev.Type != clientv3.EventTypePut {
					continue
				}
				select {
				case puts <- racePut{key: string(ev.Kv.Key), value: ev.Kv.Value, rev: ev.Kv.ModRevision, version: ev.Kv.Version, at: at}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()

	// The records: raceCerts containers on a foreign Docker host, written
	// at once.
	node := "race-" + d.RunID
	var primaries []string
	var ops []clientv3.Op
	for i := range raceCerts {
		host := fmt.Sprintf("race%d-%s.%s", i, d.RunID, a.env.Zone)
		vhost := host
		if i == 0 {
			vhost += ",www-" + host[:strings.IndexByte(host, '.')] + "." + a.env.Zone
		}
		primaries = append(primaries, host)
		rec := store.Container{ID: fmt.Sprintf("race%d", i), Name: fmt.Sprintf("race%d-%s", i, d.RunID), Host: node, Image: "backend",
			State: "running", Labels: map[string]string{"portico.vhost": vhost}, Networks: map[string]store.Network{network: {IPv4: upIP}}}
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, clientv3.OpPut(keys.Container(node, rec.ID), string(b)))
	}
	written := time.Now()
	if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
		t.Fatalf("write %d records: %v", raceCerts, err)
	}

	// Each put starts one poller per proxy: a verified handshake with SNI,
	// every 20 ms, until it serves the stored serial.
	type pickup struct {
		proxy, cert string
		took        time.Duration
		err         error
	}
	var (
		mu      sync.Mutex
		stored  = map[string]racePut{}
		putsPer = map[string]int{}
		pickups []pickup
		wg      sync.WaitGroup
	)
	deadline := time.After(90 * time.Second)
	for len(stored) < raceCerts {
		select {
		case <-deadline:
			t.Fatalf("after 90s: %d of %d certificates stored (%v)", len(stored), raceCerts, slices.Sorted(maps.Keys(stored)))
		case p := <-puts:
			var b store.CertBundle
			if err := store.Decode(p.key, p.value, &b); err != nil {
				t.Fatal(err)
			}
			putsPer[b.Primary]++
			if _, again := stored[b.Primary]; again {
				t.Errorf("certificate %s stored again at revision %d (version %d)", b.Primary, p.rev, p.version)
				continue
			}
			p.bundle = b
			stored[b.Primary] = p
			t.Logf("%s stored at revision %d, %s after the records", b.Primary, p.rev, p.at.Sub(written).Round(time.Millisecond))
			for _, px := range proxies {
				wg.Go(func() {
					took, err := raceFirstServed(px.https, b.Primary, b.Serial, a.roots, p.at, 10*time.Second)
					mu.Lock()
					pickups = append(pickups, pickup{px.name, b.Primary, took, err})
					mu.Unlock()
				})
			}
		}
	}
	wg.Wait()
	for _, p := range primaries {
		if _, ok := stored[p]; !ok {
			t.Errorf("no certificate stored for %s", p)
		}
	}

	// Quiet: every certs stage has made a pass that saw every bundle, and
	// no lock is held; only then are the orders counted.
	for _, m := range certsMetrics {
		eventually(t, 30*time.Second, "certs stage "+m+" saw every certificate", func() error {
			seen, err := raceCertsSeen(m)
			if err != nil {
				return err
			}
			for _, p := range primaries {
				if !seen[p] {
					return fmt.Errorf("not yet %s (seen %v)", p, seen)
				}
			}
			return nil
		})
	}
	eventually(t, 30*time.Second, "no certificate lock held", func() error {
		for _, p := range primaries {
			r, err := cli.Get(ctx, keys.CertLock(p)+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				return err
			}
			if r.Count > 0 {
				return fmt.Errorf("lock of %s held by %d", p, r.Count)
			}
		}
		return nil
	})
	var obtained float64
	var perStage []float64
	for _, m := range certsMetrics {
		v, err := metric(m, "portico_certs_obtained_total")
		if err != nil {
			v = 0 // a stage that obtained nothing exports no sample
		}
		obtained += v
		perStage = append(perStage, v)
	}

	// Pebble's count.
	pebbleOrders := a.env.Orders(t)
	byOrder := map[string]string{}
	for _, o := range pebbleOrders {
		if o.Serial != "" {
			byOrder[o.Serial] = o.ID
		}
	}
	for _, p := range primaries {
		st, ok := stored[p]
		if !ok {
			continue
		}
		if byOrder[st.bundle.Serial] == "" {
			t.Errorf("%s: serial %s was not issued by any order Pebble logged", p, st.bundle.Serial)
		}
		if n := orders(certState(t, cli, p)); n != 1 {
			t.Errorf("%s: its state records %d orders, want 1", p, n)
		}
	}
	var last time.Duration
	for _, p := range stored {
		last = max(last, p.at.Sub(written))
	}
	t.Logf("ACME orders in Pebble: %d for %d certificates (%.2f per certificate); obtained per certs stage %v; bundle puts %v; last stored %s after the records",
		len(pebbleOrders), raceCerts, float64(len(pebbleOrders))/raceCerts, perStage, putsPer, last.Round(time.Millisecond))
	if len(pebbleOrders) != raceCerts {
		t.Errorf("Pebble created %d orders for %d certificates, want exactly one each: %+v", len(pebbleOrders), raceCerts, pebbleOrders)
	}
	if obtained != raceCerts {
		t.Errorf("the certs stages obtained %.0f certificates, want %d", obtained, raceCerts)
	}
	r, err := cli.Get(ctx, keys.CertData(), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range r.Kvs {
		if kv.Version != 1 {
			t.Errorf("%s written %d times, want once", kv.Key, kv.Version)
		}
	}

	// Pickup per proxy.
	per := map[string][]time.Duration{}
	for _, p := range pickups {
		if p.err != nil {
			t.Errorf("%s did not serve %s: %v", p.proxy, p.cert, p.err)
			continue
		}
		per[p.proxy] = append(per[p.proxy], p.took)
		if p.took > racePickupGoal {
			t.Logf("over the goal: %s served %s %s after it was stored (goal %s)", p.proxy, p.cert, p.took.Round(time.Millisecond), racePickupGoal)
		}
	}
	for _, px := range proxies {
		ds := per[px.name]
		slices.Sort(ds)
		if len(ds) == 0 {
			continue
		}
		t.Logf("stored -> served verified by %s: p50 %s max %s (n=%d, poll 20ms)", px.name,
			ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond), len(ds))
	}

	// The sites themselves, over HTTPS on every proxy, the SAN included.
	www := "www-" + primaries[0][:strings.IndexByte(primaries[0], '.')] + "." + a.env.Zone
	for _, px := range proxies {
		for _, h := range append([]string{www}, primaries...) {
			check(t, 5*time.Second, "HTTPS "+h+" on "+px.name, func() error {
				code, body, _, err := getTLS(px.https, h, a.roots)
				if err != nil {
					return err
				}
				if code != http.StatusOK || !strings.Contains(body, d.Name("up")) {
					return fmt.Errorf("%d %q", code, body)
				}
				return nil
			})
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("wall time %s; load average %s", time.Since(began).Round(time.Second), strings.Join(strings.Fields(string(load))[:3], " "))
}

// racePut is a put of a bundle key seen by the test's watch.
type racePut struct {
	key          string
	value        []byte
	rev, version int64
	at           time.Time
	bundle       store.CertBundle
}

// raceEtcdBinary builds the etcdproc server into the test's directory (the
// build cache makes it a link).
func raceEtcdBinary(t *testing.T) string {
	t.Helper()
	bin, err := etcdcluster.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// raceFirstServed polls a TLS handshake with SNI host at addr every 20 ms
// until one verifies against roots and serves serial; it returns the time
// from since to that handshake, or an error after within.
func raceFirstServed(addr, host, serial string, roots *x509.CertPool, since time.Time, within time.Duration) (time.Duration, error) {
	var last error
	for deadline := since.Add(within); ; {
		tried := time.Now()
		if last = raceHandshake(addr, host, serial, roots); last == nil {
			return time.Since(since), nil
		}
		if tried.After(deadline) {
			return 0, fmt.Errorf("after %s: %w", within, last)
		}
		<-time.After(20*time.Millisecond - time.Since(tried))
	}
}

func raceHandshake(addr, host, serial string, roots *x509.CertPool) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: host, RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		return err
	}
	defer conn.Close()
	if got := conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16); got != serial {
		return fmt.Errorf("serial %s, want %s", got, serial)
	}
	return nil
}

// raceCertsSeen is the set of certificates a certs stage's last passes
// found stored (the cert label of portico_certs_expiry_seconds).
func raceCertsSeen(metricsAddr string) (map[string]bool, error) {
	resp, err := porticotest.PlainClient.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	const prefix = `portico_certs_expiry_seconds{cert="`
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			if i := strings.IndexByte(rest, '"'); i > 0 {
				seen[rest[:i]] = true
			}
		}
	}
	return seen, nil
}
