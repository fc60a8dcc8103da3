package reporter

import (
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/events"
)

// A stopping container leaves the rotation when Docker announces its stop,
// not when it dies: `docker stop` sends the container's stop signal and logs
// a "kill" event with the signal's number, then waits up to its timeout for
// the process to exit. A process that keeps its sockets open but answers
// nothing after the signal would otherwise get requests that hang until they
// time out. See docs/reporter.md, "Stopping containers".
//
// The reporter keeps what it learnt from kill events in memory (stopMarks),
// keyed by container id, because Docker's inspect result does not say that a
// stop is under way: a resync keeps the mark of a container that is still
// running.

// stopMark is what the reporter knows of one container's stop.
type stopMark struct {
	// kills holds, as sigBit(n), each signal n of a kill event not yet judged
	// against the container's stop signal (which only inspect tells).
	kills uint64
	// stopping: a stop signal was judged, and the container has not started,
	// restarted, been unpaused after a pause, or exited since.
	stopping bool
	// pausedAfterKill: a pause event came after the last kill event. Docker
	// unpauses a paused container it stops, and logs that unpause just after
	// the kill; only an unpause of a pause that followed the kill (the
	// operator's) clears the mark.
	pausedAfterKill bool
}

// stopMarks holds the marks of containers with a pending kill event or a
// stop under way; a container without a mark is not stopping. Only Run's
// goroutine uses it.
type stopMarks map[string]*stopMark

// event updates the marks for one container event.
func (s stopMarks) event(m events.Message) {
	if m.Type != events.ContainerEventType || m.Actor.ID == "" {
		return
	}
	id := m.Actor.ID
	switch m.Action {
	case events.ActionKill:
		n, ok := SignalNumber(m.Actor.Attributes["signal"])
		if !ok {
			return
		}
		mk := s[id]
		if mk == nil {
			mk = &stopMark{}
			s[id] = mk
		}
		mk.kills |= sigBit(n)
		mk.pausedAfterKill = false
	case events.ActionPause:
		if mk := s[id]; mk != nil {
			mk.pausedAfterKill = true
		}
	case events.ActionUnPause:
		if mk := s[id]; mk != nil && mk.pausedAfterKill {
			delete(s, id)
		}
	case events.ActionStart, events.ActionRestart:
		delete(s, id)
	}
}

// judge settles id's pending kill events against its stop signal (Docker's
// Config.StopSignal, "" meaning SIGTERM) and its state, both from an inspect,
// and reports whether the container is stopping, and whether it became so
// now. A container that is no longer running or paused (it exited, or is
// restarting, or being removed) loses its mark: its process is gone.
func (s stopMarks) judge(id, state, stopSignal string) (stopping, became bool) {
	mk := s[id]
	if mk == nil {
		return false, false
	}
	if state != "running" && state != "paused" {
		delete(s, id)
		return false, false
	}
	if mk.kills&stopSignals(stopSignal) != 0 && !mk.stopping {
		mk.stopping, became = true, true
	}
	mk.kills = 0
	if !mk.stopping {
		delete(s, id)
		return false, false
	}
	return true, became
}

// forget drops the mark of a container that is gone.
func (s stopMarks) forget(id string) { delete(s, id) }

// keepOnly drops the marks of containers not in listed.
func (s stopMarks) keepOnly(listed map[string]bool) {
	for id := range s {
		if !listed[id] {
			delete(s, id)
		}
	}
}

// Linux signal numbers of the signals that always mean a container is on
// its way out.
const (
	sigINT  = 2
	sigQUIT = 3
	sigKILL = 9
	sigTERM = 15
)

// stopSignals returns, as a bit set, the signals that mark a container
// stopping: its stop signal (SIGTERM when unset or unknown), SIGKILL,
// SIGINT and SIGQUIT. SIGHUP, SIGUSR1 and the like, which applications use
// to reload or reopen logs, do not.
func stopSignals(stopSignal string) uint64 {
	n, ok := SignalNumber(stopSignal)
	if !ok {
		n = sigTERM
	}
	return sigBit(sigKILL) | sigBit(sigINT) | sigBit(sigQUIT) | sigBit(n)
}

// sigBit is signal n's bit in a set of signals 1..64.
func sigBit(n int) uint64 { return 1 << (n - 1) }

// IsStopSignal reports whether a kill event's signal (Docker logs its
// number) marks a container whose Config.StopSignal is stopSignal as
// stopping. Both are compared as Linux signal numbers, so "15", "TERM",
// "SIGTERM" and "sigterm" are the same signal.
func IsStopSignal(signal, stopSignal string) bool {
	n, ok := SignalNumber(signal)
	return ok && stopSignals(stopSignal)&sigBit(n) != 0
}

// SignalNumber parses a signal as Docker does for Linux containers: a
// number from 1 to 64, or a name, case-insensitive, with or without "SIG"
// ("TERM", "SIGTERM", "RTMIN+3"). Numbers are Linux's (x86, arm, most
// others), whatever the platform the reporter runs on, since containers are
// Linux processes.
func SignalNumber(s string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 1 && n <= 64
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if rest, ok := strings.CutPrefix(name, "RTMIN+"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 1 && n <= 15 && rest == strconv.Itoa(n) {
			return 34 + n, true
		}
		return 0, false
	}
	if rest, ok := strings.CutPrefix(name, "RTMAX-"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 1 && n <= 14 && rest == strconv.Itoa(n) {
			return 64 - n, true
		}
		return 0, false
	}
	switch name {
	case "HUP":
		return 1, true
	case "INT":
		return sigINT, true
	case "QUIT":
		return sigQUIT, true
	case "ILL":
		return 4, true
	case "TRAP":
		return 5, true
	case "ABRT", "IOT":
		return 6, true
	case "BUS":
		return 7, true
	case "FPE":
		return 8, true
	case "KILL":
		return sigKILL, true
	case "USR1":
		return 10, true
	case "SEGV":
		return 11, true
	case "USR2":
		return 12, true
	case "PIPE":
		return 13, true
	case "ALRM":
		return 14, true
	case "TERM":
		return sigTERM, true
	case "STKFLT":
		return 16, true
	case "CHLD", "CLD":
		return 17, true
	case "CONT":
		return 18, true
	case "STOP":
		return 19, true
	case "TSTP":
		return 20, true
	case "TTIN":
		return 21, true
	case "TTOU":
		return 22, true
	case "URG":
		return 23, true
	case "XCPU":
		return 24, true
	case "XFSZ":
		return 25, true
	case "VTALRM":
		return 26, true
	case "PROF":
		return 27, true
	case "WINCH":
		return 28, true
	case "IO", "POLL":
		return 29, true
	case "PWR":
		return 30, true
	case "SYS", "UNUSED":
		return 31, true
	case "RTMIN":
		return 34, true
	case "RTMAX":
		return 64, true
	}
	return 0, false
}
