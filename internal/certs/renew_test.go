package certs

import (
	"errors"
	"testing"
	"time"

	"github.com/portico/portico/internal/store"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func bundle(primary string, notBefore time.Time, life time.Duration, names ...string) *store.CertBundle {
	if len(names) == 0 {
		names = []string{primary}
	}
	return &store.CertBundle{Primary: primary, Names: names, Issuer: store.IssuerACME, Serial: "0a1b", NotBefore: notBefore, NotAfter: notBefore.Add(life)}
}

func TestRenewAt(t *testing.T) {
	b := bundle("a.example", t0, 90*24*time.Hour)
	if got, want := RenewAt(*b, nil), t0.Add(60*24*time.Hour); !got.Equal(want) {
		t.Errorf("third of lifetime: %v, want %v", got, want)
	}
	w := &Window{Start: t0.Add(50 * 24 * time.Hour), End: t0.Add(52 * 24 * time.Hour)}
	got := RenewAt(*b, w)
	if got.Before(w.Start) || !got.Before(w.End) {
		t.Errorf("ARI point %v outside window %v..%v", got, w.Start, w.End)
	}
	if again := RenewAt(*b, w); !again.Equal(got) {
		t.Errorf("ARI point not deterministic: %v then %v", got, again)
	}
	other := *b
	other.Serial = "ffff"
	if RenewAt(other, w).Equal(got) {
		t.Error("different serials chose the same point")
	}
	if got := RenewAt(*b, &Window{Start: w.End, End: w.Start}); !got.Equal(t0.Add(60 * 24 * time.Hour)) {
		t.Errorf("invalid window not ignored: %v", got)
	}
	// A window after the third-left point cannot delay the renewal.
	late := &Window{Start: t0.Add(70 * 24 * time.Hour), End: t0.Add(80 * 24 * time.Hour)}
	if got := RenewAt(*b, late); !got.Equal(t0.Add(60 * 24 * time.Hour)) {
		t.Errorf("late ARI window delayed renewal to %v", got)
	}
}

func TestBackoff(t *testing.T) {
	base, max := time.Minute, 24*time.Hour
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{{0, 0}, {1, time.Minute}, {2, 2 * time.Minute}, {3, 4 * time.Minute}, {11, 1024 * time.Minute}, {12, 24 * time.Hour}, {1000, 24 * time.Hour}} {
		if got := Backoff(tc.n, base, max); got != tc.want {
			t.Errorf("Backoff(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

func times(base time.Time, offsets ...time.Duration) []time.Time {
	var ts []time.Time
	for _, o := range offsets {
		ts = append(ts, base.Add(o))
	}
	return ts
}

func TestRateLimitUntil(t *testing.T) {
	m := time.Minute
	names := []string{"a.example", "b.example"}
	tests := []struct {
		name string
		st   store.CertState
		want time.Time
	}{
		{name: "clean"},
		{name: "four failures", st: store.CertState{FailedAuthz: map[string][]time.Time{"a.example": times(t0, -40*m, -30*m, -20*m, -10*m)}}},
		{name: "five failures in the hour",
			st:   store.CertState{FailedAuthz: map[string][]time.Time{"b.example": times(t0, -50*m, -40*m, -30*m, -20*m, -10*m)}},
			want: t0.Add(10 * m)},
		{name: "six failures: the fifth most recent counts",
			st:   store.CertState{FailedAuthz: map[string][]time.Time{"a.example": times(t0, -55*m, -50*m, -40*m, -30*m, -20*m, -10*m)}},
			want: t0.Add(10 * m)},
		{name: "old failures do not count",
			st: store.CertState{FailedAuthz: map[string][]time.Time{"a.example": times(t0, -70*m, -65*m, -61*m, -60*m, -10*m)}}},
		{name: "failures of another name do not count",
			st: store.CertState{FailedAuthz: map[string][]time.Time{"c.example": times(t0, -5*m, -4*m, -3*m, -2*m, -1*m)}}},
		{name: "five certificates this week",
			st:   store.CertState{Orders: map[string][]time.Time{"a.example b.example": times(t0, -6*24*time.Hour, -5*24*time.Hour, -time.Hour, -2*m, -m)}},
			want: t0.Add(24 * time.Hour)},
		{name: "five certificates for another set",
			st: store.CertState{Orders: map[string][]time.Time{"a.example": times(t0, -5*m, -4*m, -3*m, -2*m, -m)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, why := RateLimitUntil(tc.st, names, t0)
			if !got.Equal(tc.want) {
				t.Errorf("until %v (%s), want %v", got, why, tc.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	day := 24 * time.Hour
	grace := 30 * day
	want := &store.WantedCert{Primary: "a.example", Names: []string{"a.example"}, Issuer: store.IssuerACME}
	wantSAN := &store.WantedCert{Primary: "a.example", Names: []string{"a.example", "b.example"}, Issuer: store.IssuerACME}
	fresh := bundle("a.example", t0.Add(-10*day), 90*day) // renew at t0+50d
	due := bundle("a.example", t0.Add(-70*day), 90*day)   // renew at t0-10d
	expired := bundle("a.example", t0.Add(-100*day), 90*day)
	failed := store.CertState{Names: []string{"a.example"}, Issuer: store.IssuerACME, Failures: 2, RetryAt: t0.Add(time.Hour)}
	tests := []struct {
		name   string
		in     Input
		action Action
		at     time.Time
	}{
		{name: "missing", in: Input{Want: want}, action: Obtain},
		{name: "valid: wait for renewal", in: Input{Want: want, Bundle: fresh}, action: Wait, at: t0.Add(50 * day)},
		{name: "renewal due", in: Input{Want: want, Bundle: due}, action: Obtain},
		{name: "ARI window earlier than a third", in: Input{Want: want, Bundle: fresh, Window: &Window{Start: t0.Add(-time.Hour), End: t0}}, action: Obtain},
		{name: "SAN added", in: Input{Want: wantSAN, Bundle: fresh}, action: Obtain},
		{name: "issuer changed", in: Input{Want: &store.WantedCert{Primary: "a.example", Names: []string{"a.example"}, Issuer: store.IssuerLocal}, Bundle: fresh}, action: Obtain},
		{name: "root replaced: re-issued at once", in: Input{Want: want, Bundle: fresh, Superseded: true}, action: Obtain},
		{name: "root replaced, backing off after a failure", in: Input{Want: want, Bundle: fresh, Superseded: true, State: failed}, action: Wait, at: t0.Add(time.Hour)},
		{name: "backing off", in: Input{Want: want, State: failed}, action: Wait, at: t0.Add(time.Hour)},
		{name: "backoff ends", in: Input{Want: want, State: store.CertState{Names: []string{"a.example"}, Issuer: store.IssuerACME, RetryAt: t0}}, action: Obtain},
		{name: "backoff does not hold a changed name set", in: Input{Want: wantSAN, State: failed}, action: Obtain},
		{name: "rate limited", in: Input{Want: want, State: store.CertState{FailedAuthz: map[string][]time.Time{"a.example": times(t0, -5*time.Minute, -4*time.Minute, -3*time.Minute, -2*time.Minute, -time.Minute)}}},
			action: Wait, at: t0.Add(55 * time.Minute)},
		{name: "local issuer is not rate limited", in: Input{Want: &store.WantedCert{Primary: "a.test", Names: []string{"a.test"}, Issuer: store.IssuerLocal},
			State: store.CertState{FailedAuthz: map[string][]time.Time{"a.test": times(t0, -5*time.Minute, -4*time.Minute, -3*time.Minute, -2*time.Minute, -time.Minute)}}},
			action: Obtain},
		{name: "unused, within grace, valid: wait until grace end", in: Input{Bundle: fresh, State: store.CertState{UnusedSince: t0.Add(-29 * day)}, Grace: grace}, action: Wait, at: t0.Add(day)},
		{name: "unused, within grace, due: still renewed", in: Input{Bundle: due, State: store.CertState{UnusedSince: t0.Add(-day)}, Grace: grace}, action: Obtain},
		{name: "unused past grace: not renewed", in: Input{Bundle: due, State: store.CertState{UnusedSince: t0.Add(-31 * day)}, Grace: grace}, action: Wait, at: due.NotAfter},
		{name: "unused past grace and expired: deleted", in: Input{Bundle: expired, State: store.CertState{UnusedSince: t0.Add(-31 * day)}, Grace: grace}, action: Delete},
		{name: "unused, never issued, within grace", in: Input{State: store.CertState{UnusedSince: t0.Add(-day)}, Grace: grace}, action: Wait, at: t0.Add(29 * day)},
		{name: "unused, never issued, past grace", in: Input{State: store.CertState{UnusedSince: t0.Add(-31 * day)}, Grace: grace}, action: Delete},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.in, t0)
			if d.Action != tc.action || !d.At.Equal(tc.at) {
				t.Errorf("Decide = %v at %v (%s), want %v at %v", d.Action, d.At, d.Reason, tc.action, tc.at)
			}
			if d.Action == Obtain && d.Cert.Primary == "" {
				t.Error("Obtain without a certificate")
			}
		})
	}
}

type authzErr struct{ names []string }

func (e authzErr) Error() string               { return "authz failed" }
func (e authzErr) FailedIdentifiers() []string { return e.names }

type retryErr struct{ at time.Time }

func (e retryErr) Error() string         { return "rate limited" }
func (e retryErr) RetryAfter() time.Time { return e.at }

func TestRecordFailureAndSuccess(t *testing.T) {
	w := store.WantedCert{Primary: "a.example", Names: []string{"a.example", "b.example"}, Issuer: store.IssuerACME}
	st := RecordFailure(store.CertState{}, w, errors.New("boom"), t0, time.Minute, time.Hour)
	if st.Failures != 1 || !st.RetryAt.Equal(t0.Add(time.Minute)) || st.LastError != "boom" || len(st.FailedAuthz["a.example"]) != 1 || len(st.FailedAuthz["b.example"]) != 1 {
		t.Fatalf("first failure: %+v", st)
	}
	st = RecordFailure(st, w, authzErr{[]string{"b.example"}}, t0.Add(time.Minute), time.Minute, time.Hour)
	if st.Failures != 2 || !st.RetryAt.Equal(t0.Add(3*time.Minute)) || len(st.FailedAuthz["a.example"]) != 1 || len(st.FailedAuthz["b.example"]) != 2 {
		t.Fatalf("second failure: %+v", st)
	}
	st = RecordFailure(st, w, retryErr{t0.Add(5 * time.Hour)}, t0.Add(2*time.Minute), time.Minute, time.Hour)
	if !st.RetryAt.Equal(t0.Add(5 * time.Hour)) {
		t.Fatalf("Retry-After ignored: %+v", st)
	}
	nst := RecordFailure(st, store.WantedCert{Primary: "a.example", Names: []string{"a.example"}, Issuer: store.IssuerACME}, ErrNoACME, t0.Add(3*time.Minute), time.Minute, time.Hour)
	if nst.Failures != 1 || len(nst.FailedAuthz["a.example"]) != 2 {
		t.Fatalf("new name set or ErrNoACME: %+v", nst)
	}
	// Two hours later the failed authorizations are pruned on success.
	b := bundle("a.example", t0, 90*24*time.Hour)
	st = RecordSuccess(st, w, *b, t0.Add(2*time.Hour))
	if st.Failures != 0 || st.LastError != "" || !st.RetryAt.IsZero() || st.FailedAuthz != nil || len(st.Orders["a.example b.example"]) != 1 || !st.NextRenewal.Equal(t0.Add(60*24*time.Hour)) {
		t.Fatalf("success: %+v", st)
	}
}

func TestReport(t *testing.T) {
	day := 24 * time.Hour
	wanted := []store.WantedCert{
		{Primary: "a.example", Names: []string{"a.example"}, Issuer: store.IssuerACME},
		{Primary: "b.example", Names: []string{"b.example"}, Issuer: store.IssuerACME},
		{Primary: "c.example", Names: []string{"c.example"}, Issuer: store.IssuerLocal},
		{Primary: "e.example", Names: []string{"e.example"}, Issuer: store.IssuerLocal},
	}
	bundles := []store.CertBundle{*bundle("a.example", t0, 90*day), *bundle("d.example", t0, 90*day), *bundle("e.example", t0.Add(-100*day), 90*day)}
	states := []store.CertState{
		{Primary: "b.example", LastError: "dns broke", LastErrorAt: t0, RetryAt: t0.Add(time.Minute), Failures: 1},
		{Primary: "d.example", UnusedSince: t0},
	}
	got := Report(wanted, bundles, states, t0)
	conds := map[string]string{}
	for _, c := range got {
		conds[c.Primary] = c.Condition
	}
	want := map[string]string{"a.example": CondValid, "b.example": CondFailing, "c.example": CondPending, "d.example": CondUnused, "e.example": CondExpired}
	for p, c := range want {
		if conds[p] != c {
			t.Errorf("%s: condition %q, want %q", p, conds[p], c)
		}
	}
	if got[1].Error != "dns broke" || !got[1].RetryAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("failing entry: %+v", got[1])
	}
}
