package acme

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/challenge"
)

// fakeProvider records the domains it is asked to present.
type fakeProvider struct {
	name              string
	err               error
	timeout, interval time.Duration
	got               []string
}

func (f *fakeProvider) Present(_ context.Context, domain, _, _ string) error {
	f.got = append(f.got, domain)
	return f.err
}
func (f *fakeProvider) CleanUp(context.Context, string, string, string) error { return nil }

type timeoutProvider struct{ *fakeProvider }

func (p timeoutProvider) Timeout() (time.Duration, time.Duration) { return p.timeout, p.interval }

type sequentialProvider struct{ timeoutProvider }

func (sequentialProvider) Sequential() time.Duration { return 7 * time.Second }

func TestRouterLongestSuffix(t *testing.T) {
	def, ex, sub, org := &fakeProvider{name: "def"}, &fakeProvider{name: "ex"}, &fakeProvider{name: "sub"}, &fakeProvider{name: "org"}
	r, err := newRouter(map[string]challenge.Provider{
		"":                 def,
		"example.com":      ex,
		"sub.example.com.": sub,
		"Example.ORG":      org,
	}, dispatchConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		domain string
		want   *fakeProvider
	}{
		{"example.com", ex},
		{"a.example.com", ex},
		{"*.example.com", ex},
		{"sub.example.com", sub},
		{"a.b.sub.example.com", sub},
		{"*.sub.example.com", sub},
		{"notexample.com", def},
		{"xsub.example.com", ex},
		{"A.EXAMPLE.ORG.", org},
		{"example.net", def},
	}
	for _, tt := range tests {
		for _, p := range []*fakeProvider{def, ex, sub, org} {
			p.got = nil
		}
		if err := r.Present(context.Background(), tt.domain, "t", "k"); err != nil {
			t.Fatalf("%s: %v", tt.domain, err)
		}
		if len(tt.want.got) != 1 || tt.want.got[0] != tt.domain {
			t.Errorf("%s: went to the wrong provider (want %s)", tt.domain, tt.want.name)
		}
	}
}

func TestRouterNoDefault(t *testing.T) {
	r, err := newRouter(map[string]challenge.Provider{"example.com": &fakeProvider{}}, dispatchConfig{})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Present(context.Background(), "example.org", "t", "k")
	if err == nil || !strings.Contains(err.Error(), "example.org") || !strings.Contains(err.Error(), "no DNS provider") {
		t.Fatalf("want a no-provider error naming example.org, got %v", err)
	}
	if _, err := newRouter(nil, dispatchConfig{}); err == nil {
		t.Fatal("no providers: want error")
	}
}

func TestRouterErrorNamesDomainAndProvider(t *testing.T) {
	p := &fakeProvider{err: errors.New("boom")}
	r, _ := newRouter(map[string]challenge.Provider{"": p}, dispatchConfig{})
	err := r.Present(context.Background(), "a.example.com", "t", "k")
	if err == nil || err.Error() != "dns-01 present for a.example.com via acme: boom" {
		t.Fatalf("got %v", err)
	}
}

func TestRouterTimeoutAndSequence(t *testing.T) {
	a := timeoutProvider{&fakeProvider{timeout: 30 * time.Second, interval: time.Second}}
	b := sequentialProvider{timeoutProvider{&fakeProvider{timeout: 90 * time.Second, interval: 500 * time.Millisecond}}}
	r, _ := newRouter(map[string]challenge.Provider{"a.com": a, "": &fakeProvider{}}, dispatchConfig{})
	if to, iv := r.Timeout(); to != 60*time.Second || iv != 2*time.Second {
		t.Errorf("lego defaults for a provider without Timeout: got %v %v", to, iv)
	}
	if _, ok := r.(interface{ Sequential() time.Duration }); ok {
		t.Error("no sequential provider, yet the router is sequential")
	}
	r, _ = newRouter(map[string]challenge.Provider{"a.com": a, "b.com": b}, dispatchConfig{})
	if to, iv := r.Timeout(); to != 90*time.Second || iv != time.Second {
		t.Errorf("max: got %v %v", to, iv)
	}
	s, ok := r.(interface{ Sequential() time.Duration })
	if !ok || s.Sequential() != 7*time.Second {
		t.Errorf("sequential: %v", ok)
	}
	r, _ = newRouter(map[string]challenge.Provider{"b.com": b}, dispatchConfig{PropagationTimeout: 3 * time.Second, PollingInterval: 100 * time.Millisecond, SequenceInterval: time.Millisecond})
	if to, iv := r.Timeout(); to != 3*time.Second || iv != 100*time.Millisecond {
		t.Errorf("override: got %v %v", to, iv)
	}
	if s := r.(interface{ Sequential() time.Duration }); s.Sequential() != time.Millisecond {
		t.Errorf("sequence override: %v", s.Sequential())
	}
}

func TestParseKeyType(t *testing.T) {
	tests := map[string]certcrypto.KeyType{
		"": certcrypto.EC256, "ec256": certcrypto.EC256, "EC384": certcrypto.EC384,
		"rsa2048": certcrypto.RSA2048, "rsa3072": certcrypto.RSA3072, " rsa4096 ": certcrypto.RSA4096,
	}
	for in, want := range tests {
		got, err := ParseKeyType(in)
		if err != nil || got != want {
			t.Errorf("%q: got %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"rsa8192", "ed25519", "P256"} {
		if _, err := ParseKeyType(in); err == nil || !strings.Contains(err.Error(), in) {
			t.Errorf("%q: want an error naming it, got %v", in, err)
		}
	}
}

func TestAccountID(t *testing.T) {
	a := AccountID(LetsEncryptProduction, "ops@example.com")
	if len(a) != 32 || strings.Trim(a, "0123456789abcdef") != "" {
		t.Fatalf("not 32 hex digits: %q", a)
	}
	if a != AccountID(LetsEncryptProduction, " OPS@example.com") {
		t.Error("email case or spaces change the id")
	}
	if a == AccountID(LetsEncryptStaging, "ops@example.com") || a == AccountID(LetsEncryptProduction, "") {
		t.Error("different directory or email, same id")
	}
}

func TestNewValidates(t *testing.T) {
	p := map[string]challenge.Provider{"": &fakeProvider{}}
	for name, cfg := range map[string]Config{
		"key type":   {KeyType: "dsa", Providers: p},
		"directory":  {DirectoryURL: "not a url", Providers: p},
		"eab":        {EABKeyID: "kid", Providers: p},
		"roots":      {CARoots: []byte("junk"), Providers: p},
		"challenges": {},
		"override":   {Providers: p, Challenges: map[string]string{"": "tls-alpn-01"}},
	} {
		if _, err := New(cfg, nopKV{}, nil); err == nil {
			t.Errorf("%s: want error", name)
		}
	}
	i, err := New(Config{Providers: p}, nopKV{}, nil)
	if err != nil || i.DirectoryURL() != LetsEncryptProduction {
		t.Fatalf("defaults: %v %v", i, err)
	}
}
