package main

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/portico/portico/internal/nginx/supervise"
)

func TestRestartsInPlace(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{[]string{"run", "--data-dir", "/d"}, true},
		{[]string{"nginx"}, true},
		{[]string{"reporter"}, false},
		{[]string{"certs"}, false},
		{[]string{"status"}, false},
		{nil, false},
	} {
		if got := restartsInPlace(tt.args); got != tt.want {
			t.Errorf("restartsInPlace(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

// The first signal decides how the stages end; a SIGTERM after a SIGHUP
// cancels the restart (the process exits), a SIGHUP after a SIGTERM
// changes nothing.
func TestSignalsDecide(t *testing.T) {
	for _, tt := range []struct {
		name    string
		sigs    []os.Signal
		restart bool
		leave   bool // the supervisor leaves nginx running
	}{
		{"hangup", []os.Signal{syscall.SIGHUP}, true, true},
		{"two hangups", []os.Signal{syscall.SIGHUP, syscall.SIGHUP}, true, true},
		{"terminate", []os.Signal{syscall.SIGTERM}, false, false},
		{"interrupt", []os.Signal{os.Interrupt}, false, false},
		{"terminate, then hangup", []os.Signal{syscall.SIGTERM, syscall.SIGHUP}, false, false},
		{"hangup, then terminate", []os.Signal{syscall.SIGHUP, syscall.SIGTERM}, false, true},
	} {
		ctx, cancel := context.WithCancelCause(context.Background())
		s := &signals{ctx: ctx, cancel: cancel}
		for _, sig := range tt.sigs {
			s.got(sig)
		}
		if ctx.Err() == nil {
			t.Errorf("%s: the context did not end", tt.name)
		}
		if got := s.restarting(); got != tt.restart {
			t.Errorf("%s: restarting = %v, want %v", tt.name, got, tt.restart)
		}
		if got := errors.Is(context.Cause(ctx), supervise.ErrLeaveRunning); got != tt.leave {
			t.Errorf("%s: nginx left running = %v (cause %v), want %v", tt.name, got, context.Cause(ctx), tt.leave)
		}
	}
}
