package acme_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/challenge"
	"github.com/miekg/dns"

	"github.com/portico/portico/internal/certs/acme"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
	"github.com/portico/portico/internal/testenv/acmetest"
)

func TestMain(m *testing.M) {
	// lego follows CNAMEs with a process-wide resolver; keep it on loopback.
	acmetest.PinLegoResolver()
	m.Run()
}

// countingHandler counts log records by message.
type countingHandler struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs[r.Message]++
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
func (h *countingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs[msg]
}

// fixture is one Pebble + BIND + etcd.
type fixture struct {
	env  *acmetest.Env
	etcd *storetest.Etcd
	keys store.Keys
	logs *countingHandler
}

func start(t *testing.T, opts acmetest.Options) *fixture {
	t.Helper()
	return &fixture{
		env:  acmetest.Start(t, opts),
		etcd: storetest.Start(t),
		keys: store.NewKeys("/portico-test"),
		logs: &countingHandler{msgs: map[string]int{}},
	}
}

// issuer builds an Issuer on the fixture with provider for the zone.
func (f *fixture) issuer(t *testing.T, provider challenge.Provider) *acme.Issuer {
	t.Helper()
	i, err := acme.New(acme.Config{
		DirectoryURL:                f.env.DirectoryURL,
		Email:                       "ops@" + f.env.Zone,
		CARoots:                     f.env.DirectoryCA,
		Providers:                   map[string]challenge.Provider{f.env.Zone: provider},
		Resolvers:                   []string{f.env.DNSAddr},
		DisableAuthoritativeNSCheck: true,
		PropagationTimeout:          5 * time.Second,
		PollingInterval:             100 * time.Millisecond,
		Keys:                        f.keys,
	}, f.etcd.Client, slog.New(f.logs))
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// verify checks b chains to Pebble's current root and covers names.
func (f *fixture) verify(t *testing.T, b store.CertBundle, names []string) *x509.Certificate {
	t.Helper()
	leaf := parse(t, b.CertPEM)[0]
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	if !roots.AppendCertsFromPEM(f.env.Root(t)) {
		t.Fatal("pebble root: no certificate")
	}
	for _, c := range parse(t, b.ChainPEM) {
		inter.AddCert(c)
	}
	for _, n := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: roots, Intermediates: inter}); err != nil {
			t.Errorf("verify %s: %v", n, err)
		}
	}
	if !slices.Equal(b.Names, names) || b.Primary != names[0] || b.Issuer != store.IssuerACME || b.IssuerURL != f.env.DirectoryURL {
		t.Errorf("bundle fields: primary %q names %v issuer %q url %q", b.Primary, b.Names, b.Issuer, b.IssuerURL)
	}
	if b.Serial != leaf.SerialNumber.Text(16) || !b.NotBefore.Equal(leaf.NotBefore) || !b.NotAfter.Equal(leaf.NotAfter) {
		t.Errorf("bundle serial/validity differ from the leaf")
	}
	if blk, _ := pem.Decode([]byte(b.KeyPEM)); blk == nil || !strings.Contains(blk.Type, "PRIVATE KEY") {
		t.Errorf("no private key PEM")
	}
	return leaf
}

func parse(t *testing.T, s string) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for rest := []byte(s); ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatalf("no certificate in %q", s)
	}
	return out
}

func TestObtainTwoNamesAndRenewalWindow(t *testing.T) {
	t.Parallel()
	f := start(t, acmetest.Options{Validity: 24 * time.Hour})
	iss := f.issuer(t, f.env.DNSProvider(t))
	names := []string{"a." + f.env.Zone, "b." + f.env.Zone}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t0 := time.Now()
	b, err := iss.Obtain(ctx, names)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("obtained %v in %v", names, time.Since(t0).Round(time.Millisecond))
	leaf := f.verify(t, b, names)
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d > 25*time.Hour {
		t.Errorf("validity %v, configured 24h", d)
	}
	for _, n := range names {
		if r := f.env.Query(t, "_acme-challenge."+n, dns.TypeTXT); len(r.Answer) != 0 {
			t.Errorf("challenge record of %s left behind: %v", n, r.Answer)
		}
	}

	start, end, err := iss.RenewalWindow(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if !start.Before(end) || start.Before(b.NotBefore) || end.After(b.NotAfter) {
		t.Errorf("renewal window [%v, %v] not inside validity [%v, %v]", start, end, b.NotBefore, b.NotAfter)
	}

	other := b
	other.IssuerURL = acme.LetsEncryptProduction
	if _, _, err := iss.RenewalWindow(ctx, other); !errors.Is(err, acme.ErrNoRenewalInfo) {
		t.Errorf("bundle of another CA: want ErrNoRenewalInfo, got %v", err)
	}
}

func TestObtainWildcardAndApex(t *testing.T) {
	t.Parallel()
	f := start(t, acmetest.Options{})
	iss := f.issuer(t, f.env.DNSProvider(t))
	names := []string{"*." + f.env.Zone, f.env.Zone}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := iss.Obtain(ctx, names)
	if err != nil {
		t.Fatal(err)
	}
	f.verify(t, b, []string{"*." + f.env.Zone, f.env.Zone})
	leaf := parse(t, b.CertPEM)[0]
	if err := leaf.VerifyHostname("anything." + f.env.Zone); err != nil {
		t.Error(err)
	}
}

func TestAccountReusedAcrossIssuers(t *testing.T) {
	t.Parallel()
	f := start(t, acmetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Two issuers race on an empty store: one account.
	first, second := f.issuer(t, f.env.DNSProvider(t)), f.issuer(t, f.env.DNSProvider(t))
	var wg sync.WaitGroup
	urls := make([]string, 2)
	errs := make([]error, 2)
	for k, iss := range []*acme.Issuer{first, second} {
		wg.Go(func() { urls[k], errs[k] = iss.Account(ctx) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if urls[0] == "" || urls[0] != urls[1] {
		t.Fatalf("racing issuers got accounts %q and %q", urls[0], urls[1])
	}
	key := f.keys.ACMEAccount(acme.AccountID(f.env.DirectoryURL, "ops@"+f.env.Zone))
	before, err := f.etcd.Client.Get(ctx, key)
	if err != nil || len(before.Kvs) != 1 {
		t.Fatalf("account record %s: %v %v", key, before, err)
	}
	registered := f.logs.count("acme account registered")

	// A new issuer (a restart) uses the stored account to obtain.
	third := f.issuer(t, f.env.DNSProvider(t))
	if _, err := third.Obtain(ctx, []string{"c." + f.env.Zone}); err != nil {
		t.Fatal(err)
	}
	if url, _ := third.Account(ctx); url != urls[0] {
		t.Errorf("restarted issuer uses account %q, want %q", url, urls[0])
	}
	after, err := f.etcd.Client.Get(ctx, key)
	if err != nil || len(after.Kvs) != 1 {
		t.Fatal(err)
	}
	if after.Kvs[0].ModRevision != before.Kvs[0].ModRevision {
		t.Errorf("account record rewritten after restart (mod revision %d -> %d)", before.Kvs[0].ModRevision, after.Kvs[0].ModRevision)
	}
	if n := f.logs.count("acme account registered"); n != registered {
		t.Errorf("registered again after restart: %d -> %d", registered, n)
	}
}

func TestWrongTSIGFailsFastNamingNameAndProvider(t *testing.T) {
	t.Parallel()
	f := start(t, acmetest.Options{})
	iss := f.issuer(t, f.env.BadDNSProvider(t))
	name := "bad." + f.env.Zone
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	_, err := iss.Obtain(ctx, []string{name})
	took := time.Since(t0)
	if err == nil {
		t.Fatal("obtain with a wrong TSIG secret succeeded")
	}
	t.Logf("error after %v: %v", took.Round(time.Millisecond), err)
	for _, want := range []string{"obtain [" + name + "]", "dns-01 present for " + name + " via dnsupdate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if took > 20*time.Second {
		t.Errorf("took %v", took)
	}
}

func TestReRegistersWhenCAForgetsAccount(t *testing.T) {
	t.Parallel()
	f := start(t, acmetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	iss := f.issuer(t, f.env.DNSProvider(t))
	before, err := iss.Account(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.env.StopCA(t)
	f.env.StartCA(t) // empty state: the stored account is unknown now
	b, err := iss.Obtain(ctx, []string{"d." + f.env.Zone})
	if err != nil {
		t.Fatal(err)
	}
	f.verify(t, b, []string{"d." + f.env.Zone})
	after, err := iss.Account(ctx)
	if err != nil || after == "" {
		t.Fatal(err)
	}
	if n := f.logs.count("acme account registered"); n != 2 {
		t.Errorf("registrations: %d, want 2 (before %q, after %q)", n, before, after)
	}
}
