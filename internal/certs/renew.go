package certs

import (
	"errors"
	"hash/fnv"
	"slices"
	"time"

	"github.com/portico/portico/internal/redact"
	"github.com/portico/portico/internal/store"
)

// Let's Encrypt's limits the stage stays within: at most AuthzFailLimit
// failed authorizations per identifier per AuthzFailWindow, and at most
// OrderLimit certificates for the same name set per OrderWindow.
const (
	AuthzFailLimit  = 5
	AuthzFailWindow = time.Hour
	OrderLimit      = 5
	OrderWindow     = 7 * 24 * time.Hour
)

// Window is a CA's suggested renewal window (ACME Renewal Information).
type Window struct{ Start, End time.Time }

// RenewAt is when b is due for renewal: when a third of the lifetime is
// left, or earlier at a point in the CA's window when it offers a valid one
// (chosen from the certificate's serial so that it is stable across restarts
// and spread across certificates). ARI can bring a renewal forward, as after
// a CA incident, but never push it past the third-left point: an order
// takes time and can fail, and the margin is what absorbs that.
func RenewAt(b store.CertBundle, w *Window) time.Time {
	life := b.NotAfter.Sub(b.NotBefore)
	third := b.NotAfter.Add(-life / 3)
	if w != nil && w.End.After(w.Start) {
		h := fnv.New64a()
		h.Write([]byte(b.Serial))
		frac := float64(h.Sum64()>>11) / float64(1<<53)
		if t := w.Start.Add(time.Duration(frac * float64(w.End.Sub(w.Start)))); t.Before(third) {
			return t
		}
	}
	return third
}

// Backoff is the wait after the given number of consecutive failures: base,
// doubling, capped at max.
func Backoff(failures int, base, max time.Duration) time.Duration {
	if failures < 1 {
		return 0
	}
	d := base
	for i := 1; i < failures && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// RateLimitUntil returns when an ACME order for names may start without
// exceeding the limits, and which limit holds it; zero when it may start now.
func RateLimitUntil(st store.CertState, names []string, now time.Time) (time.Time, string) {
	var until time.Time
	var why string
	for _, n := range names {
		if t := limitUntil(st.FailedAuthz[n], AuthzFailLimit, AuthzFailWindow, now); t.After(until) {
			until, why = t, "failed authorizations for "+n
		}
	}
	if t := limitUntil(st.Orders[NameSetKey(names)], OrderLimit, OrderWindow, now); t.After(until) {
		until, why = t, "certificates issued for this name set"
	}
	return until, why
}

// limitUntil is when fewer than limit of times fall within the window
// before it; zero if that is already so.
func limitUntil(times []time.Time, limit int, window time.Duration, now time.Time) time.Time {
	var recent []time.Time
	for _, t := range times {
		if now.Sub(t) < window {
			recent = append(recent, t)
		}
	}
	if len(recent) < limit {
		return time.Time{}
	}
	slices.SortFunc(recent, func(a, b time.Time) int { return b.Compare(a) })
	return recent[limit-1].Add(window)
}

// Action is what Decide tells the stage to do with one certificate.
type Action int

const (
	// Wait: nothing now; look again at Decision.At (zero: only on change).
	Wait Action = iota
	// Obtain: order Decision.Cert now.
	Obtain
	// Delete: remove the bundle and state; unused past grace and expired.
	Delete
)

func (a Action) String() string {
	return [...]string{"wait", "obtain", "delete"}[a]
}

// Input is everything Decide knows about one certificate.
type Input struct {
	// Want is the wanted certificate; nil when nothing wants it any more.
	Want *store.WantedCert
	// Bundle is the stored certificate, if any.
	Bundle *store.CertBundle
	State  store.CertState
	// Window is the CA's renewal window for Bundle, if it offers one.
	Window *Window
	// Grace is how long an unused certificate is still renewed.
	Grace time.Duration
	// Superseded is set when the issuer no longer vouches for Bundle (the
	// local CA's root was replaced): it is re-issued at once.
	Superseded bool
}

// Decision is Decide's answer.
type Decision struct {
	Action Action
	// Cert is what to order (Obtain).
	Cert store.WantedCert
	// Reason says why, for logs and status.
	Reason string
	// At is when to look again (Wait); zero means only on the next change.
	At time.Time
}

// Decide is the one decision about a certificate at now: obtain it (missing,
// names or issuer changed, renewal due), wait (valid, backing off after a
// failure, held by a rate limit), or delete it (unused past the grace period
// and expired).
func Decide(in Input, now time.Time) Decision {
	want := in.Want
	var graceEnd time.Time
	if want == nil {
		unused := in.State.UnusedSince
		if unused.IsZero() {
			unused = now
		}
		graceEnd = unused.Add(in.Grace)
		switch {
		case in.Bundle == nil && !now.Before(graceEnd):
			return Decision{Action: Delete, Reason: "unused past the grace period"}
		case in.Bundle == nil:
			return Decision{Action: Wait, Reason: "unused", At: graceEnd}
		case !now.Before(graceEnd) && !now.Before(in.Bundle.NotAfter):
			return Decision{Action: Delete, Reason: "unused past the grace period and expired"}
		case !now.Before(graceEnd):
			return Decision{Action: Wait, Reason: "unused past the grace period; not renewed", At: in.Bundle.NotAfter}
		}
		want = &store.WantedCert{Primary: in.Bundle.Primary, Names: in.Bundle.Names, Issuer: in.Bundle.Issuer}
	}

	var reason string
	switch b := in.Bundle; {
	case b == nil:
		reason = "no certificate"
	case !SameNames(b.Names, want.Names):
		reason = "names changed"
	case b.Issuer != want.Issuer:
		reason = "issuer changed"
	case in.Superseded:
		reason = "the local CA's root was replaced"
	default:
		at := RenewAt(*b, in.Window)
		if now.Before(at) {
			if !graceEnd.IsZero() && graceEnd.Before(at) {
				at = graceEnd
			}
			return Decision{Action: Wait, Reason: "valid", At: at}
		}
		reason = "renewal due"
	}

	st := in.State
	if SameNames(st.Names, want.Names) && st.Issuer == want.Issuer && now.Before(st.RetryAt) {
		return Decision{Action: Wait, Reason: reason + "; retrying after failure", At: st.RetryAt}
	}
	if want.Issuer == store.IssuerACME {
		if until, why := RateLimitUntil(st, want.Names, now); now.Before(until) {
			return Decision{Action: Wait, Reason: reason + "; rate limit: " + why, At: until}
		}
	}
	return Decision{Action: Obtain, Cert: *want, Reason: reason}
}

// FailedIdentifiers is implemented by an issuer's error that knows which
// identifiers' authorizations failed; without it every name of the order
// counts as failed.
type FailedIdentifiers interface {
	FailedIdentifiers() []string
}

// RetryAfter is implemented by an issuer's error that carries the CA's
// Retry-After (a rate-limit response); the next try waits at least that long.
type RetryAfter interface {
	RetryAfter() time.Time
}

// ErrNoACME is the error a certificate gets when it needs ACME and the
// stage has no ACME issuer configured.
var ErrNoACME = errors.New("no ACME issuer configured")

// RecordFailure returns st after a failed order of want at now.
func RecordFailure(st store.CertState, want store.WantedCert, err error, now time.Time, base, max time.Duration) store.CertState {
	st = Prune(st, now)
	if !SameNames(st.Names, want.Names) || st.Issuer != want.Issuer {
		st.Failures = 0
	}
	st.Primary, st.Names, st.Issuer = want.Primary, want.Names, want.Issuer
	st.Failures++
	st.LastError, st.LastErrorAt = redact.Error(err), now
	st.RetryAt = now.Add(Backoff(st.Failures, base, max))
	var ra RetryAfter
	if errors.As(err, &ra) && ra.RetryAfter().After(st.RetryAt) {
		st.RetryAt = ra.RetryAfter()
	}
	if want.Issuer == store.IssuerACME && !errors.Is(err, ErrNoACME) {
		failed := want.Names
		var fi FailedIdentifiers
		if errors.As(err, &fi) && len(fi.FailedIdentifiers()) > 0 {
			failed = fi.FailedIdentifiers()
		}
		if st.FailedAuthz == nil {
			st.FailedAuthz = map[string][]time.Time{}
		}
		for _, n := range failed {
			st.FailedAuthz[n] = append(st.FailedAuthz[n], now)
		}
	}
	return st
}

// RecordSuccess returns st after b was issued for want at now.
func RecordSuccess(st store.CertState, want store.WantedCert, b store.CertBundle, now time.Time) store.CertState {
	st = Prune(st, now)
	st.Primary, st.Names, st.Issuer = want.Primary, want.Names, want.Issuer
	st.Failures, st.LastError, st.LastErrorAt, st.RetryAt = 0, "", time.Time{}, time.Time{}
	if want.Issuer == store.IssuerACME {
		if st.Orders == nil {
			st.Orders = map[string][]time.Time{}
		}
		k := NameSetKey(want.Names)
		st.Orders[k] = append(st.Orders[k], now)
	}
	st.NextRenewal = RenewAt(b, nil)
	return st
}

// Prune drops rate-limit timestamps that no longer count at now.
func Prune(st store.CertState, now time.Time) store.CertState {
	st.FailedAuthz = prune(st.FailedAuthz, AuthzFailWindow, now)
	st.Orders = prune(st.Orders, OrderWindow, now)
	return st
}

func prune(m map[string][]time.Time, window time.Duration, now time.Time) map[string][]time.Time {
	var out map[string][]time.Time
	for k, ts := range m {
		var keep []time.Time
		for _, t := range ts {
			if now.Sub(t) < window {
				keep = append(keep, t)
			}
		}
		if len(keep) > 0 {
			if out == nil {
				out = map[string][]time.Time{}
			}
			out[k] = keep
		}
	}
	return out
}
