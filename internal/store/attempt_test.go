package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		timedOut bool
		want     bool
	}{
		{"success", nil, false, false},
		{"attempt ran out of time", context.DeadlineExceeded, true, true},
		{"etcd request timed out (proposal lost with the leader)", rpctypes.ErrTimeout, false, true},
		{"wrapped", fmt.Errorf("put %q: %w", "k", rpctypes.ErrTimeoutDueToLeaderFail), false, true},
		{"leader changed", rpctypes.ErrLeaderChanged, false, true},
		{"no leader", rpctypes.ErrNoLeader, false, true},
		{"permission denied: final", rpctypes.ErrPermissionDenied, false, false},
		{"request too large: final", rpctypes.ErrRequestTooLarge, false, false},
		{"caller's own deadline: not the attempt's", context.DeadlineExceeded, false, false},
		{"a member with no leader dropped the proposal", errors.New("rpc error: code = Unknown desc = raft proposal dropped"), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Retryable(tc.err, tc.timedOut); got != tc.want {
				t.Errorf("Retryable(%v, %v) = %v, want %v", tc.err, tc.timedOut, got, tc.want)
			}
		})
	}
}

// TestAttemptsRepeatsAnUnansweredWrite: an attempt etcd never answers (a
// proposal lost with its leader) is cut at AttemptTimeout and the next one
// lands, long before the caller's deadline.
func TestAttemptsRepeatsAnUnansweredWrite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := 0
	t0 := time.Now()
	err := Attempts(ctx, func(ctx context.Context) error {
		n++
		if n == 1 {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	if err != nil || n != 2 {
		t.Fatalf("err %v after %d attempts", err, n)
	}
	if el := time.Since(t0); el > AttemptTimeout+5*time.Second {
		t.Errorf("took %s", el)
	}
}

func TestAttemptsStops(t *testing.T) {
	refused := rpctypes.ErrPermissionDenied
	n := 0
	if err := Attempts(context.Background(), func(context.Context) error { n++; return refused }); !errors.Is(err, refused) || n != 1 {
		t.Errorf("refused: %v after %d attempts", err, n)
	}
	// The caller's context ends: no more attempts.
	ctx, cancel := context.WithCancel(context.Background())
	n = 0
	err := Attempts(ctx, func(context.Context) error { n++; cancel(); return rpctypes.ErrTimeout })
	if !errors.Is(err, rpctypes.ErrTimeout) || n != 1 {
		t.Errorf("cancelled: %v after %d attempts", err, n)
	}
	// etcd's own timeout is repeated at once.
	n = 0
	err = Attempts(context.Background(), func(context.Context) error {
		n++
		if n < 3 {
			return rpctypes.ErrTimeout
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Errorf("etcd timeouts: %v after %d attempts", err, n)
	}
}

func TestAttemptLimit(t *testing.T) {
	want := []time.Duration{time.Second, time.Second, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for n, w := range want {
		if got := attemptLimit(n); got != w {
			t.Errorf("attempt %d: %s, want %s", n, got, w)
		}
	}
}
