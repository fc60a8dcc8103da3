package supervise

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrLeaveRunning, as the cause of the end of Run's context
// (context.WithCancelCause), makes Run return without stopping nginx: the
// master keeps serving, as after a SIGKILL of portico, and the next
// supervisor adopts it (adopt.go). Any other end of the context stops
// nginx gracefully. `portico run` and `portico nginx` end with it on
// SIGHUP, before they replace themselves with their (maybe upgraded)
// executable: a restart in place that never stops nginx.
var ErrLeaveRunning = errors.New("nginx is left running for the next portico to adopt")

// leaving reports whether ctx ended with ErrLeaveRunning, and then logs
// that the master pid stays.
func (s *Supervisor) leaving(ctx context.Context, pid int) bool {
	if !errors.Is(context.Cause(ctx), ErrLeaveRunning) {
		return false
	}
	s.Log.Info("leaving nginx running for the next portico to adopt", "pid", pid)
	return true
}

// parseParent reads the parent pid (field 4) of a /proc/<pid>/stat line.
func parseParent(b []byte) (int, error) {
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("stat: no command")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, errors.New("stat: no parent pid")
	}
	return strconv.Atoi(f[1])
}

// ownChild reports whether pid is a child of this process: an nginx this
// same process started before it replaced itself by exec (a restart in
// place keeps the pid, so the master stays its child).
func ownChild(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	ppid, err := parseParent(b)
	return err == nil && ppid == os.Getpid()
}

// reap collects the exit status of pid if it is a child of this process
// that has exited (an adopted master this process started before its
// exec), so that it leaves no zombie behind. Otherwise it does nothing.
func reap(pid int) {
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
}
