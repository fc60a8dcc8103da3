package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// AttemptTimeout bounds each of the first attempts of a write that is
// safe to repeat (Attempts); after the third, each attempt has twice as
// long as the one before, up to maxAttemptTimeout, so that a cluster that
// is merely slow still gets the time it needs. A write reaches etcd in
// milliseconds; one that has not answered in a second was most likely
// proposed to a leader that died: etcd then answers only at its own request
// timeout (7 s with the default election timeout), and every container
// change waited that long after a leader was killed. A new attempt goes to
// another member and lands as soon as a new leader is elected.
const AttemptTimeout = time.Second

const (
	maxAttemptTimeout = 8 * time.Second
	// shortAttempts are the attempts given AttemptTimeout alone.
	shortAttempts = 3
	// attemptPause spaces attempts that failed at once (a member with no
	// leader drops the proposal), so that an election is not spun on.
	attemptPause = 50 * time.Millisecond
)

// Attempts runs f, each time within attemptLimit, until it succeeds, fails
// for a reason a new attempt cannot change, or ctx ends. f must be safe to
// repeat although an earlier attempt may have been applied after all: a
// transaction that compares first, or a delete.
func Attempts(ctx context.Context, f func(ctx context.Context) error) error {
	for n := 0; ; n++ {
		actx, cancel := context.WithTimeout(ctx, attemptLimit(n))
		err := f(actx)
		timedOut := actx.Err() == context.DeadlineExceeded
		cancel()
		if err == nil || ctx.Err() != nil || !Retryable(err, timedOut) {
			return err
		}
		if !timedOut {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(attemptPause):
			}
		}
	}
}

// attemptLimit is the time attempt n (from 0) is given.
func attemptLimit(n int) time.Duration {
	d := AttemptTimeout
	for i := shortAttempts; i <= n && d < maxAttemptTimeout; i++ {
		d *= 2
	}
	return min(d, maxAttemptTimeout)
}

// Retryable says whether a failed write may land on a new attempt: its
// attempt ran out of time (timedOut), or etcd says the leader went away,
// the member had none to propose to, or the request timed out in the
// cluster; not that it was refused.
func Retryable(err error, timedOut bool) bool {
	if err == nil {
		return false
	}
	// raft's ErrProposalDropped crosses gRPC as its text alone.
	if timedOut || strings.Contains(err.Error(), "raft proposal dropped") {
		return true
	}
	for _, e := range []error{rpctypes.ErrTimeout, rpctypes.ErrTimeoutDueToLeaderFail, rpctypes.ErrTimeoutDueToConnectionLost,
		rpctypes.ErrLeaderChanged, rpctypes.ErrNoLeader} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
