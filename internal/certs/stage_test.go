package certs

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/certs/localca"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// counting wraps the real local CA: it counts orders per name set and,
// as a fault injector, fails every order with a name containing "bad".
type counting struct {
	ca *localca.CA
	mu sync.Mutex
	n  map[string]int
}

func newCounting(ca *localca.CA) *counting { return &counting{ca: ca, n: map[string]int{}} }

func (c *counting) Obtain(ctx context.Context, names []string) (store.CertBundle, error) {
	c.mu.Lock()
	c.n[NameSetKey(names)]++
	c.mu.Unlock()
	for _, n := range names {
		if strings.Contains(n, "bad") {
			return store.CertBundle{}, fmt.Errorf("injected failure for %s", n)
		}
	}
	return c.ca.Obtain(ctx, names)
}

func (c *counting) count(names ...string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[NameSetKey(names)]
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var testKeys = store.NewKeys("/portico-test")

func testLog(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startStage runs a stage until the test ends (or the returned stop is
// called, which waits for Run to return).
func startStage(t *testing.T, cli *clientv3.Client, cfg Config) (*Stage, func()) {
	t.Helper()
	cfg.Keys = testKeys
	if cfg.Debounce == 0 {
		cfg.Debounce = 10 * time.Millisecond
	}
	s, err := New(cfg, cli, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

func putContainer(t *testing.T, cli *clientv3.Client, id, vhost string) {
	t.Helper()
	c := store.Container{ID: id, Name: "c" + id, Host: "h1", State: "running",
		Labels: map[string]string{routing.LabelVhost: vhost, routing.LabelPort: "80"}}
	if _, err := store.PutJSON(context.Background(), cli, testKeys.Container("h1", id), c); err != nil {
		t.Fatal(err)
	}
}

func deleteContainer(t *testing.T, cli *clientv3.Client, id string) {
	t.Helper()
	if _, err := cli.Delete(context.Background(), testKeys.Container("h1", id)); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	porticotest.Eventually(t, 20*time.Second, what, func() error {
		if !cond() {
			return errors.New("not yet")
		}
		return nil
	})
}

func getJSON(t *testing.T, cli *clientv3.Client, key string, v any) bool {
	t.Helper()
	resp, err := cli.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return false
	}
	if err := store.Decode(key, resp.Kvs[0].Value, v); err != nil {
		t.Fatal(err)
	}
	return true
}

func bundleFor(t *testing.T, cli *clientv3.Client, primary string) (store.CertBundle, bool) {
	var b store.CertBundle
	ok := getJSON(t, cli, testKeys.CertBundle(primary), &b)
	return b, ok
}

func stateFor(t *testing.T, cli *clientv3.Client, primary string) store.CertState {
	var st store.CertState
	getJSON(t, cli, testKeys.CertState(primary), &st)
	return st
}

// waitPasses pokes s and waits until it has completed n more reconcile
// passes.
func waitPasses(t *testing.T, s *Stage, n int64) {
	t.Helper()
	target := s.passes.Load() + n
	waitFor(t, "reconcile passes", func() bool { s.poke(); return s.passes.Load() >= target })
}

func verify(t *testing.T, cli *clientv3.Client, b store.CertBundle) {
	t.Helper()
	root, ok, err := localca.Load(context.Background(), cli, testKeys)
	if err != nil || !ok {
		t.Fatalf("local CA: ok=%v err=%v", ok, err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(root))
	blk, _ := pem.Decode([]byte(b.CertPEM))
	if blk == nil {
		t.Fatalf("bundle %s holds no certificate", b.Primary)
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range b.Names {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: pool}); err != nil {
			t.Errorf("verify %s: %v", n, err)
		}
	}
}

func TestRecordsToBundleAndRestartDoesNotReorder(t *testing.T) {
	e := storetest.Start(t)
	out := filepath.Join(t.TempDir(), "domains.txt")
	iss := newCounting(localca.New(e.Client, testKeys, localca.Options{}))
	putContainer(t, e.Client, "1", "app.test, www.app.test")
	s, stop := startStage(t, e.Client, Config{Local: iss, DomainsOut: out})

	var b store.CertBundle
	waitFor(t, "bundle app.test", func() bool { var ok bool; b, ok = bundleFor(t, e.Client, "app.test"); return ok })
	verify(t, e.Client, b)
	if b.Issuer != store.IssuerLocal || !SameNames(b.Names, []string{"app.test", "www.app.test"}) {
		t.Errorf("bundle %+v", b)
	}
	var wanted []store.WantedCert
	getJSON(t, e.Client, testKeys.CertsWanted(), &wanted)
	if len(wanted) != 1 || wanted[0].Primary != "app.test" {
		t.Errorf("wanted %+v", wanted)
	}
	waitFor(t, "domains.txt", func() bool {
		data, _ := os.ReadFile(out)
		return strings.Contains(string(data), "\napp.test www.app.test\n")
	})

	// At rest, the stage writes nothing.
	rev := func() int64 {
		resp, err := e.Client.Get(context.Background(), "/")
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	waitPasses(t, s, 1)
	r0 := rev()
	waitPasses(t, s, 2)
	if r1 := rev(); r1 != r0 {
		t.Errorf("store revision moved from %d to %d at rest", r0, r1)
	}
	stop()

	// A new stage (a restart) does not order the stored certificate again;
	// it does order a new one.
	iss2 := newCounting(localca.New(e.Client, testKeys, localca.Options{}))
	startStage(t, e.Client, Config{Local: iss2, DomainsOut: out})
	putContainer(t, e.Client, "2", "other.test")
	waitFor(t, "bundle other.test", func() bool { _, ok := bundleFor(t, e.Client, "other.test"); return ok })
	if n := iss2.count("app.test", "www.app.test"); n != 0 {
		t.Errorf("restart ordered app.test %d times", n)
	}
	if n := iss.count("app.test", "www.app.test") + iss2.count("other.test"); n != 2 {
		t.Errorf("orders %d, want 2", n)
	}
}

func TestTwoStagesOrderEachCertificateOnce(t *testing.T) {
	e := storetest.Start(t)
	ca := localca.New(e.Client, testKeys, localca.Options{})
	iss := newCounting(ca)
	const n = 10
	for i := range n {
		putContainer(t, e.Client, fmt.Sprint(i), fmt.Sprintf("app%d.test", i))
	}
	_, stop1 := startStage(t, e.Client, Config{Local: iss})
	_, stop2 := startStage(t, e.Client, Config{Local: iss})
	waitFor(t, "all bundles", func() bool {
		resp, err := e.Client.Get(context.Background(), testKeys.CertData(), clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && resp.Count == n
	})
	stop1()
	stop2()
	for i := range n {
		if c := iss.count(fmt.Sprintf("app%d.test", i)); c != 1 {
			t.Errorf("app%d.test ordered %d times", i, c)
		}
	}
}

func TestFailingNameDoesNotBlockOthers(t *testing.T) {
	e := storetest.Start(t)
	iss := newCounting(localca.New(e.Client, testKeys, localca.Options{}))
	putContainer(t, e.Client, "1", "good1.test")
	putContainer(t, e.Client, "2", "bad.test")
	putContainer(t, e.Client, "3", "good2.test")
	base := 50 * time.Millisecond
	startStage(t, e.Client, Config{Local: iss, RetryBase: base, RetryMax: time.Hour})

	waitFor(t, "good bundles", func() bool {
		_, ok1 := bundleFor(t, e.Client, "good1.test")
		_, ok2 := bundleFor(t, e.Client, "good2.test")
		return ok1 && ok2
	})
	var st store.CertState
	waitFor(t, "three failures", func() bool { st = stateFor(t, e.Client, "bad.test"); return st.Failures >= 3 })
	if got, want := st.RetryAt.Sub(st.LastErrorAt), Backoff(st.Failures, base, time.Hour); got != want || got < 4*base {
		t.Errorf("retry after %v at failure %d, want %v", got, st.Failures, want)
	}
	if _, ok := bundleFor(t, e.Client, "bad.test"); ok {
		t.Error("bad.test has a bundle")
	}

	wanted, bundles, states, problems, err := Load(context.Background(), e.Client, testKeys)
	if err != nil || len(problems) > 0 {
		t.Fatal(err, problems)
	}
	for _, c := range Report(wanted, bundles, states, time.Now()) {
		switch c.Primary {
		case "bad.test":
			if c.Condition != CondFailing || !strings.Contains(c.Error, "injected failure") || c.RetryAt.IsZero() {
				t.Errorf("status of bad.test: %+v", c)
			}
		default:
			if c.Condition != CondValid || c.Error != "" {
				t.Errorf("status of %s: %+v", c.Primary, c)
			}
		}
	}
}

func TestNoACMEIssuerIsAStatusError(t *testing.T) {
	e := storetest.Start(t)
	putContainer(t, e.Client, "1", "www.example.com")
	putContainer(t, e.Client, "2", "ok.test")
	startStage(t, e.Client, Config{})
	waitFor(t, "ok.test", func() bool { _, ok := bundleFor(t, e.Client, "ok.test"); return ok })
	waitFor(t, "status error", func() bool { return stateFor(t, e.Client, "www.example.com").LastError == ErrNoACME.Error() })
	if st := stateFor(t, e.Client, "www.example.com"); len(st.FailedAuthz) != 0 {
		t.Errorf("no order was made, yet failed authorizations recorded: %+v", st.FailedAuthz)
	}
}

func TestStandaloneDomainsFile(t *testing.T) {
	e := storetest.Start(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "domains.txt")
	if err := os.WriteFile(in, []byte("# my certs\none.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	iss := newCounting(localca.New(e.Client, testKeys, localca.Options{}))
	// A container record exists, but standalone mode ignores records.
	putContainer(t, e.Client, "1", "ignored.test")
	startStage(t, e.Client, Config{Local: iss, DomainsFile: in, PollInterval: 20 * time.Millisecond})
	waitFor(t, "one.test", func() bool { _, ok := bundleFor(t, e.Client, "one.test"); return ok })

	if err := os.WriteFile(in, []byte("one.test\ntwo.test www.two.test\nbad_line!\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var b store.CertBundle
	waitFor(t, "two.test", func() bool { var ok bool; b, ok = bundleFor(t, e.Client, "two.test"); return ok })
	verify(t, e.Client, b)
	if iss.count("ignored.test") != 0 || iss.count("one.test") != 1 {
		t.Errorf("orders: %v", iss.n)
	}
}

func TestUnusedCertificateNotRenewedAfterGrace(t *testing.T) {
	e := storetest.Start(t)
	clk := &clock{t: time.Now()}
	iss := newCounting(localca.New(e.Client, testKeys, localca.Options{Now: clk.Now}))
	putContainer(t, e.Client, "1", "app.test")
	s, _ := startStage(t, e.Client, Config{Local: iss, Now: clk.Now, Grace: time.Hour, CheckInterval: 20 * time.Millisecond})
	waitFor(t, "first bundle", func() bool { _, ok := bundleFor(t, e.Client, "app.test"); return ok })

	// Wanted and due (a 30-day certificate is renewed after 20 days): renewed.
	clk.Add(21 * 24 * time.Hour)
	waitFor(t, "renewal", func() bool { return iss.count("app.test") == 2 })
	waitFor(t, "renewed bundle stored", func() bool {
		b, _ := bundleFor(t, e.Client, "app.test")
		return b.NotAfter.After(clk.Now())
	})

	// No longer wanted: within the grace period it is kept; after it, not renewed.
	deleteContainer(t, e.Client, "1")
	waitFor(t, "unused mark", func() bool { return !stateFor(t, e.Client, "app.test").UnusedSince.IsZero() })
	clk.Add(2 * time.Hour)
	waitPasses(t, s, 2)
	clk.Add(21 * 24 * time.Hour) // due, but unused past grace
	waitPasses(t, s, 3)
	if n := iss.count("app.test"); n != 2 {
		t.Fatalf("unused certificate ordered again: %d orders", n)
	}
	if _, ok := bundleFor(t, e.Client, "app.test"); !ok {
		t.Fatal("unexpired unused bundle deleted")
	}
	// Once expired, the bundle and state are deleted.
	clk.Add(10 * 24 * time.Hour)
	waitFor(t, "deletion", func() bool {
		_, ok := bundleFor(t, e.Client, "app.test")
		resp, err := e.Client.Get(context.Background(), testKeys.CertState("app.test"))
		return !ok && err == nil && len(resp.Kvs) == 0
	})
	if n := iss.count("app.test"); n != 2 {
		t.Errorf("orders %d, want 2", n)
	}
}

// ariIssuer is the real local CA posing as the ACME issuer, with a renewal
// window the test moves.
type ariIssuer struct {
	*counting
	mu    sync.Mutex
	start time.Time
}

func (a *ariIssuer) RenewalWindow(ctx context.Context, b store.CertBundle) (time.Time, time.Time, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.start, a.start.Add(time.Minute), nil
}

func (a *ariIssuer) set(start time.Time) { a.mu.Lock(); a.start = start; a.mu.Unlock() }

func TestACMEIssuerAndRenewalWindow(t *testing.T) {
	e := storetest.Start(t)
	local := newCounting(localca.New(e.Client, testKeys, localca.Options{}))
	acme := &ariIssuer{counting: newCounting(localca.New(e.Client, testKeys, localca.Options{})), start: time.Now().Add(24 * time.Hour)}
	putContainer(t, e.Client, "1", "a.test")
	s, _ := startStage(t, e.Client, Config{Issuer: IssuerACME, ACME: acme, Local: local, CheckInterval: 20 * time.Millisecond})
	var b store.CertBundle
	waitFor(t, "bundle", func() bool { var ok bool; b, ok = bundleFor(t, e.Client, "a.test"); return ok })
	if b.Issuer != store.IssuerACME || local.count("a.test") != 0 {
		t.Errorf("issuer %q, local orders %d", b.Issuer, local.count("a.test"))
	}
	waitFor(t, "next renewal from the window", func() bool {
		nr := stateFor(t, e.Client, "a.test").NextRenewal
		return !nr.Before(acme.start) && nr.Before(acme.start.Add(time.Minute))
	})
	waitPasses(t, s, 3)
	if n := acme.count("a.test"); n != 1 {
		t.Fatalf("orders before the window: %d", n)
	}
	acme.set(time.Now().Add(-time.Hour))
	waitFor(t, "renewal in the window", func() bool { return acme.count("a.test") >= 2 })
}
