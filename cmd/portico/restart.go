package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/portico/portico/internal/nginx/supervise"
)

// A restart in place (docs/nginx.md "Restart and upgrade without a gap"):
// SIGHUP to `portico run` or `portico nginx` stops its stages cleanly but
// leaves its nginx serving (supervise.ErrLeaveRunning), releases what the
// process holds (data dir lock, embedded etcd child, sockets), then
// replaces the process with its executable as it is on disk now (an
// upgrade takes effect), with the same arguments and environment and the
// same pid (systemd's MainPID stays right). The new process adopts the
// running nginx as after a SIGKILL. No connection is refused.
//
// If the exec fails (the binary was removed, or cannot run), the stages
// are already stopped: the process says why on stderr and starts the
// command again from the top, in this process, with the code it runs; it
// adopts its nginx the same way. Exiting instead would stop serving under
// systemd (the unit's cgroup is killed when the main process exits) and
// leave an unsupervised nginx elsewhere.

// errRestartInPlace ends the stages' context on SIGHUP.
var errRestartInPlace = fmt.Errorf("hangup signal received: restarting in place: %w", supervise.ErrLeaveRunning)

// restartsInPlace reports whether the command (args[0]) restarts in place
// on SIGHUP: the commands that supervise an nginx. For the others SIGHUP
// keeps its default meaning (the process ends).
func restartsInPlace(args []string) bool {
	return len(args) > 0 && (args[0] == "run" || args[0] == "nginx")
}

// signals turns SIGINT and SIGTERM into the end of ctx (a stop: nginx is
// stopped too) and, when hup, SIGHUP into its end with errRestartInPlace.
// A SIGTERM after a SIGHUP cancels the restart: the process exits.
type signals struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	ch     chan os.Signal
	done   chan struct{}
	mu     sync.Mutex
	term   bool // SIGINT or SIGTERM received
}

func notifySignals(parent context.Context, hup bool) *signals {
	ctx, cancel := context.WithCancelCause(parent)
	s := &signals{ctx: ctx, cancel: cancel, ch: make(chan os.Signal, 4), done: make(chan struct{})}
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if hup {
		sigs = append(sigs, syscall.SIGHUP)
	}
	signal.Notify(s.ch, sigs...)
	go func() {
		for {
			select {
			case <-s.done:
				return
			case sig := <-s.ch:
				s.got(sig)
			}
		}
	}()
	return s
}

// got handles one signal: the first SIGHUP or SIGTERM decides the cause
// (later SIGHUPs change nothing); a SIGTERM is always remembered.
func (s *signals) got(sig os.Signal) {
	if sig == syscall.SIGHUP {
		s.cancel(errRestartInPlace)
		return
	}
	s.mu.Lock()
	s.term = true
	s.mu.Unlock()
	s.cancel(fmt.Errorf("%s signal received", sig))
}

// restarting reports whether the command ended for a restart in place
// and no SIGINT or SIGTERM came since.
func (s *signals) restarting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.term && errors.Is(context.Cause(s.ctx), errRestartInPlace)
}

// stop stops relaying signals.
func (s *signals) stop() {
	signal.Stop(s.ch)
	close(s.done)
	s.cancel(nil)
}

// serve runs the command of argv (os.Args) until a signal ends it, and
// restarts it in place on SIGHUP when it is one that does.
func serve(argv []string, e env, stdout, stderr io.Writer) error {
	args := argv[1:]
	hup := restartsInPlace(args)
	for {
		sig := notifySignals(context.Background(), hup)
		err := run(sig.ctx, args, e, stdout, stderr)
		if !sig.restarting() {
			sig.stop()
			return err
		}
		if err != nil {
			// The stages stopped; the next process starts them afresh.
			fmt.Fprintln(stderr, "portico: while stopping for the restart in place:", err)
		}
		err = execSelf(argv, os.Environ())
		sig.stop()
		fmt.Fprintf(stderr, "portico: %v; starting again in this process, with the code it runs (nginx is adopted, not restarted)\n", err)
	}
}

// execSelf replaces the process with its own executable, as it is on
// disk now, keeping its pid. It returns only if the exec failed.
func execSelf(argv, environ []string) error {
	exe, err := os.Executable() // Linux: /proc/self/exe, without " (deleted)" after an upgrade
	if err != nil {
		return fmt.Errorf("restart in place: own executable: %w", err)
	}
	// A SIGHUP between here and the new process's own signal.Notify would
	// end it (SIGHUP's default): ignored, which exec keeps, it is lost
	// instead. The new process handles it again as soon as it notifies.
	signal.Ignore(syscall.SIGHUP)
	err = syscall.Exec(exe, argv, environ)
	signal.Reset(syscall.SIGHUP)
	return fmt.Errorf("restart in place: exec %s: %w", exe, err)
}
