package certs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
)

// preflighted is an ACME issuer whose Preflight refuses wildcards, as
// acme.Issuer's does without a DNS provider; it counts orders.
type preflighted struct{ orders atomic.Int64 }

var errNoWildcard = errors.New("a wildcard can only be validated by dns-01")

func (p *preflighted) Preflight(names []string) error {
	for _, n := range names {
		if strings.HasPrefix(n, "*.") {
			return fmt.Errorf("%s: %w", n, errNoWildcard)
		}
	}
	return nil
}

func (p *preflighted) Obtain(context.Context, []string) (store.CertBundle, error) {
	p.orders.Add(1)
	return store.CertBundle{}, errors.New("not reached in this test")
}

// TestUnsolvableWildcardIsAStatusErrorNotRetried: a wildcard no challenge
// can validate is never ordered (no request, no rate-limit budget), its
// state says why, and passes after it still order nothing.
func TestUnsolvableWildcardIsAStatusErrorNotRetried(t *testing.T) {
	e := storetest.Start(t)
	putContainer(t, e.Client, "1", "a.example.com")
	iss := &preflighted{}
	s, _ := startStage(t, e.Client, Config{ACME: iss, WildcardDomains: []string{"example.com"}, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond, CheckInterval: 20 * time.Millisecond})
	waitFor(t, "status error", func() bool {
		return strings.Contains(stateFor(t, e.Client, "*.example.com").LastError, errNoWildcard.Error())
	})
	passes := s.passes.Load()
	waitPasses(t, s, passes+10)
	st := stateFor(t, e.Client, "*.example.com")
	if n := iss.orders.Load(); n != 0 {
		t.Errorf("%d orders for an unsolvable certificate", n)
	}
	if st.Failures != 0 || len(st.FailedAuthz) != 0 || !st.RetryAt.IsZero() {
		t.Errorf("state %+v: want no failure counted, no retry time", st)
	}
	wanted, bundles, states, _, err := Load(context.Background(), e.Client, testKeys)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range Report(wanted, bundles, states, time.Now()) {
		if c.Primary == "*.example.com" && (c.Condition != CondFailing || !strings.Contains(c.Error, "*.example.com")) {
			t.Errorf("status %+v", c)
		}
	}
}

// TestHTTP01FailureCountsLikeDNS01: a failed http-01 authorization is
// recorded and backed off exactly as a dns-01 one.
func TestHTTP01FailureCountsLikeDNS01(t *testing.T) {
	want := store.WantedCert{Primary: "a.example", Names: []string{"a.example"}, Issuer: store.IssuerACME}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var states [2]store.CertState
	for i, msg := range []string{"acme: error: 403 :: urn:ietf:params:acme:error:unauthorized :: http-01: invalid response from http://a.example/.well-known/acme-challenge/x", "acme: error: 403 :: urn:ietf:params:acme:error:unauthorized :: dns-01: no TXT record"} {
		st := store.CertState{}
		for k := range 3 {
			st = RecordFailure(st, want, errors.New(msg), now.Add(time.Duration(k)*time.Second), time.Minute, time.Hour)
		}
		states[i] = st
	}
	h, d := states[0], states[1]
	if h.Failures != d.Failures || h.RetryAt != d.RetryAt || len(h.FailedAuthz["a.example"]) != 3 || len(d.FailedAuthz["a.example"]) != 3 {
		t.Fatalf("http-01 %+v, dns-01 %+v", h, d)
	}
	for k := 3; k < AuthzFailLimit; k++ {
		h = RecordFailure(h, want, errors.New("http-01 failed"), now.Add(time.Duration(k)*time.Second), time.Minute, time.Hour)
	}
	if until, why := RateLimitUntil(h, want.Names, now.Add(time.Minute)); until.IsZero() || !strings.Contains(why, "failed authorizations") {
		t.Errorf("http-01 failures do not hold the rate limit: %v %q", until, why)
	}
}
