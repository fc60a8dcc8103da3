package reporter

import (
	"strconv"
	"strings"
	"time"

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
// running, until its stop timeout has passed.

// stopMark is what the reporter knows of one container's stop.
type stopMark struct {
	// kills holds, as sigBit(n), each signal n of a kill event not yet judged
	// against the container's stop signal (which only inspect tells).
	kills uint64
	// stopping: a stop signal was judged, and the container has not started,
	// restarted, been unpaused after a pause, or exited since, and its
	// deadline has not passed.
	stopping bool
	// deadline, when stopping, is when the mark lapses: the last stop
	// signal's judgement plus the container's stop timeout plus stopGrace.
	// Zero means never (a stop timeout of -1: Docker waits for ever).
	deadline time.Time
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
// Config.StopSignal, "" meaning SIGTERM), its stop timeout
// (Config.StopTimeout, nil meaning Docker's 10 s) and its state, all from an
// inspect made at now, and reports whether the container is stopping, and
// whether it became so now or its mark lapsed now. A container that is no
// longer running or paused (it exited, or is restarting, or being removed)
// loses its mark: its process is gone. A container still running past its
// deadline (it survived its stop signal, which `docker stop` would have
// followed with SIGKILL by then) loses it too.
func (s stopMarks) judge(id, state, stopSignal string, stopTimeout *int, now time.Time) (stopping bool, change stopChange) {
	mk := s[id]
	if mk == nil {
		return false, stopSame
	}
	if state != "running" && state != "paused" {
		delete(s, id)
		return false, stopSame
	}
	if mk.kills&stopSignals(stopSignal) != 0 {
		if !mk.stopping {
			change = stopBegan
		}
		mk.stopping = true
		mk.deadline = stopDeadline(now, stopTimeout)
	}
	mk.kills = 0
	if mk.stopping && !mk.deadline.IsZero() && !now.Before(mk.deadline) {
		delete(s, id)
		return false, stopLapsed
	}
	if !mk.stopping {
		delete(s, id)
		return false, stopSame
	}
	return true, change
}

// stopChange is what a judge did to a container's mark.
type stopChange int

const (
	stopSame   stopChange = iota
	stopBegan             // a stop signal marked it stopping
	stopLapsed            // it outlived its stop timeout: back in rotation
)

// DefaultStopTimeout is Docker's stop timeout for a container that sets
// none (`docker stop` without -t).
const DefaultStopTimeout = 10 * time.Second

// stopGrace is added to a stop timeout before a mark lapses: Docker sends
// SIGKILL at the timeout, and the container's death (which clears the mark
// anyway) takes a moment to be seen.
const stopGrace = 2 * time.Second

// stopDeadline is when the mark of a stop signal judged at now lapses:
// now, plus the stop timeout (seconds; nil means DefaultStopTimeout), plus
// stopGrace. A negative timeout (Docker waits for ever) never lapses: the
// zero time.
func stopDeadline(now time.Time, stopTimeout *int) time.Time {
	d := DefaultStopTimeout
	if stopTimeout != nil {
		if *stopTimeout < 0 {
			return time.Time{}
		}
		d = time.Duration(*stopTimeout) * time.Second
	}
	return now.Add(d + stopGrace)
}

// next returns the earliest deadline of a stopping mark, or false when no
// mark lapses.
func (s stopMarks) next() (time.Time, bool) {
	var first time.Time
	for _, mk := range s {
		if mk.stopping && !mk.deadline.IsZero() && (first.IsZero() || mk.deadline.Before(first)) {
			first = mk.deadline
		}
	}
	return first, !first.IsZero()
}

// due returns the containers whose marks lapse at or before now; an
// inspect judges them again.
func (s stopMarks) due(now time.Time) []string {
	var ids []string
	for id, mk := range s {
		if mk.stopping && !mk.deadline.IsZero() && !now.Before(mk.deadline) {
			ids = append(ids, id)
		}
	}
	return ids
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

// Linux signal numbers the reporter names.
const (
	sigINT  = 2
	sigQUIT = 3
	sigKILL = 9
	sigTERM = 15
)

// stopSignals returns, as a bit set, the signals that mark a container
// stopping: its stop signal (SIGTERM when unset or unknown), which
// `docker stop` sends, and SIGKILL, which nothing survives. Any other
// signal is the operator's business with the application: SIGQUIT asks a
// JVM for a thread dump, SIGINT, SIGHUP and SIGUSR1 mean what the
// application makes of them, and a container sent one stays in rotation
// (if it does exit, its death takes it out).
func stopSignals(stopSignal string) uint64 {
	n, ok := SignalNumber(stopSignal)
	if !ok {
		n = sigTERM
	}
	return sigBit(sigKILL) | sigBit(n)
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
