package reporter

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
)

func TestSignalNumber(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"15", 15, true}, {"TERM", 15, true}, {"SIGTERM", 15, true}, {"sigterm", 15, true}, {"Term", 15, true},
		{"9", 9, true}, {"SIGKILL", 9, true}, {"KILL", 9, true},
		{"SIGINT", 2, true}, {"SIGQUIT", 3, true}, {"SIGHUP", 1, true}, {"SIGUSR1", 10, true},
		{"SIGWINCH", 28, true}, {"SIGRTMIN+3", 37, true}, {"RTMAX-1", 63, true}, {"SIGRTMAX", 64, true}, {"64", 64, true},
		{"", 0, false}, {"0", 0, false}, {"65", 0, false}, {"-15", 0, false}, {"SIGNOPE", 0, false},
		{"SIGRTMIN+16", 0, false}, {"RTMIN+x", 0, false}, {"RTMIN+03", 0, false}, {"SIG", 0, false},
	} {
		got, ok := SignalNumber(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("SignalNumber(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestIsStopSignal(t *testing.T) {
	for _, tt := range []struct {
		signal, stopSignal string
		want               bool
	}{
		// Docker logs numbers; the stop signal is configured by name or number.
		{"15", "", true},
		{"15", "SIGTERM", true},
		{"15", "TERM", true},
		{"15", "15", true},
		{"SIGTERM", "", true},
		{"9", "", true},
		{"2", "", false}, // SIGINT: the application's business, unless it is the stop signal
		{"3", "", false}, // SIGQUIT: a JVM's thread dump
		{"2", "SIGINT", true},
		{"3", "SIGQUIT", true},
		{"3", "SIGTERM", false},
		{"2", "15", false},
		{"9", "SIGINT", true},
		{"9", "SIGWINCH", true},
		{"28", "SIGWINCH", true}, // httpd's graceful stop
		{"15", "SIGWINCH", false},
		{"37", "SIGRTMIN+3", true}, // systemd as pid 1
		{"1", "", false},           // SIGHUP: reload
		{"10", "", false},          // SIGUSR1: reopen logs
		{"12", "", false},
		{"28", "", false},
		{"1", "SIGHUP", true}, // a stop signal is a stop signal
		{"15", "bogus", true}, // Docker would refuse it; SIGTERM is assumed
		{"", "", false},
		{"junk", "", false},
	} {
		if got := IsStopSignal(tt.signal, tt.stopSignal); got != tt.want {
			t.Errorf("IsStopSignal(%q, stop signal %q) = %v, want %v", tt.signal, tt.stopSignal, got, tt.want)
		}
	}
}

// TestStopMarks follows event sequences Docker logs, as
// `docker events` shows them, through the marks.
func TestStopMarks(t *testing.T) {
	ev := func(action string, signal ...string) events.Message {
		m := events.Message{Type: events.ContainerEventType, Action: events.Action(action), Actor: events.Actor{ID: "c1"}}
		if len(signal) > 0 {
			m.Actor.Attributes = map[string]string{"signal": signal[0]}
		}
		return m
	}
	type step struct {
		m      *events.Message // an event, or nil: an inspect
		state  string          // the inspect's state
		want   bool            // the inspect's verdict
		change stopChange
		after  time.Duration // time passed before this step
	}
	inspect := func(state string, want, became bool) step {
		st := step{state: state, want: want}
		if became {
			st.change = stopBegan
		}
		return st
	}
	later := func(d time.Duration, st step) step { st.after = d; return st }
	lapsed := step{state: "running", change: stopLapsed}
	on := func(m events.Message) step { return step{m: &m} }
	secs := func(n int) *int { return &n }
	tests := []struct {
		name        string
		stopSignal  string
		stopTimeout *int
		steps       []step
	}{
		{name: "docker stop: stopping until it dies", steps: []step{
			on(ev("kill", "15")), inspect("running", true, true),
			inspect("running", true, false), // a resync keeps it
			on(ev("kill", "9")), inspect("running", true, false),
			on(ev("die")), inspect("exited", false, false),
			inspect("exited", false, false),
		}},
		{name: "events coalesced: kill and die judged at once", steps: []step{
			on(ev("kill", "15")), on(ev("die")), on(ev("stop")), inspect("exited", false, false),
		}},
		{name: "SIGHUP does not mark", steps: []step{
			on(ev("kill", "1")), inspect("running", false, false),
		}},
		{name: "SIGUSR1 then SIGTERM coalesced: stopping", steps: []step{
			on(ev("kill", "10")), on(ev("kill", "15")), inspect("running", true, true),
		}},
		{name: "a later SIGHUP does not clear", steps: []step{
			on(ev("kill", "15")), inspect("running", true, true),
			on(ev("kill", "1")), inspect("running", true, false),
		}},
		{name: "custom stop signal by name", stopSignal: "SIGWINCH", steps: []step{
			on(ev("kill", "15")), inspect("running", false, false),
			on(ev("kill", "28")), inspect("running", true, true),
		}},
		{name: "start clears", steps: []step{
			on(ev("kill", "15")), inspect("running", true, true),
			on(ev("start")), inspect("running", false, false),
		}},
		{name: "docker restart coalesced: kill, die, stop, start, restart", steps: []step{
			on(ev("kill", "15")), on(ev("die")), on(ev("stop")), on(ev("start")), on(ev("restart")), inspect("running", false, false),
		}},
		{name: "restart clears a pending kill", steps: []step{
			on(ev("kill", "15")), on(ev("restart")), inspect("running", false, false),
		}},
		{name: "docker stop of a paused container: Docker's own unpause keeps the mark", steps: []step{
			on(ev("pause")), inspect("paused", false, false),
			on(ev("kill", "15")), on(ev("unpause")), inspect("running", true, true),
		}},
		{name: "...also when the kill was judged before the unpause", steps: []step{
			on(ev("pause")),
			on(ev("kill", "15")), inspect("paused", true, true),
			on(ev("unpause")), inspect("running", true, false),
		}},
		{name: "an operator's pause and unpause after the stop signal clears", steps: []step{
			on(ev("kill", "15")), inspect("running", true, true),
			on(ev("pause")), inspect("paused", true, false),
			on(ev("unpause")), inspect("running", false, false),
		}},
		{name: "docker kill: stopping (dies at once)", steps: []step{
			on(ev("kill", "9")), inspect("running", true, true),
		}},
		{name: "no kill, no mark", steps: []step{
			on(ev("pause")), on(ev("unpause")), inspect("running", false, false),
		}},
		{name: "unparseable signal ignored", steps: []step{
			on(ev("kill", "TERMINATE")), inspect("running", false, false),
		}},
		{name: "SIGQUIT (thread dump) and SIGINT do not mark when the stop signal is SIGTERM", steps: []step{
			on(ev("kill", "3")), inspect("running", false, false),
			on(ev("kill", "2")), inspect("running", false, false),
		}},
		{name: "SIGINT marks when it is the stop signal", stopSignal: "SIGINT", steps: []step{
			on(ev("kill", "2")), inspect("running", true, true),
		}},
		{name: "Docker's default stop timeout: stopping until 10 s plus the grace, then back", steps: []step{
			on(ev("kill", "15")), inspect("running", true, true),
			later(DefaultStopTimeout+stopGrace-time.Millisecond, inspect("running", true, false)),
			later(time.Millisecond, lapsed),
			inspect("running", false, false),
		}},
		{name: "the container's own stop timeout", stopTimeout: secs(1), steps: []step{
			on(ev("kill", "15")), inspect("running", true, true),
			later(time.Second+stopGrace-time.Millisecond, inspect("running", true, false)),
			later(time.Millisecond, lapsed),
		}},
		{name: "a second stop signal restarts the clock", stopTimeout: secs(1), steps: []step{
			on(ev("kill", "15")), inspect("running", true, true),
			later(2*time.Second, on(ev("kill", "15"))), inspect("running", true, false),
			later(time.Second+stopGrace-time.Millisecond, inspect("running", true, false)),
			later(time.Millisecond, lapsed),
		}},
		{name: "a signal that is not a stop signal does not restart the clock", stopTimeout: secs(1), steps: []step{
			on(ev("kill", "15")), inspect("running", true, true),
			later(2*time.Second, on(ev("kill", "1"))), inspect("running", true, false),
			later(time.Second, lapsed),
		}},
		{name: "a lapsed mark does not come back at a resync, a new stop signal marks again", stopTimeout: secs(0), steps: []step{
			on(ev("kill", "15")), inspect("running", true, true),
			later(stopGrace, lapsed),
			later(time.Hour, inspect("running", false, false)),
			on(ev("kill", "9")), inspect("running", true, true),
		}},
		{name: "a stop timeout of -1 never lapses", stopTimeout: secs(-1), steps: []step{
			on(ev("kill", "15")), inspect("running", true, true),
			later(24*time.Hour, inspect("running", true, false)),
		}},
		{name: "a paused container past its timeout lapses too", stopTimeout: secs(1), steps: []step{
			on(ev("kill", "15")), inspect("paused", true, true),
			later(time.Second+stopGrace, step{state: "paused", change: stopLapsed}),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stopMarks{}
			now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			for i, st := range tt.steps {
				now = now.Add(st.after)
				if st.m != nil {
					s.event(*st.m)
					continue
				}
				// The session's timer (next) and what it re-inspects (due)
				// agree with the verdict.
				at, ok := s.next()
				due := s.due(now)
				if st.change == stopLapsed {
					if !ok || at.After(now) {
						t.Errorf("step %d: next deadline %v, %v; want one at or before the lapse at %v", i, at, ok, now)
					}
					if len(due) != 1 || due[0] != "c1" {
						t.Errorf("step %d: due = %v, want [c1]", i, due)
					}
				} else if len(due) != 0 {
					t.Errorf("step %d: due = %v before the deadline %v", i, due, at)
				}
				got, change := s.judge("c1", st.state, tt.stopSignal, tt.stopTimeout, now)
				if got != st.want || change != st.change {
					t.Errorf("step %d: inspect %s: stopping %v, change %v; want %v, %v", i, st.state, got, change, st.want, st.change)
				}
			}
			if _, ok := s["c1"]; ok && !tt.steps[len(tt.steps)-1].want {
				t.Errorf("mark kept after it stopped mattering: %+v", *s["c1"])
			}
		})
	}
}

// TestStopMarksForgetGone: marks of containers that are gone do not pile up.
func TestStopMarksForgetGone(t *testing.T) {
	s := stopMarks{}
	for _, id := range []string{"a", "b", "c"} {
		s.event(events.Message{Type: events.ContainerEventType, Action: events.ActionKill, Actor: events.Actor{ID: id, Attributes: map[string]string{"signal": "15"}}})
	}
	s.forget("a")
	s.keepOnly(map[string]bool{"b": true})
	if len(s) != 1 || s["b"] == nil {
		t.Errorf("marks = %v, want only b", s)
	}
	s.event(events.Message{Type: events.NetworkEventType, Action: events.ActionKill, Actor: events.Actor{ID: "n"}})
	if s["n"] != nil {
		t.Error("network event made a mark")
	}
}
