package reporter

import (
	"testing"

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
		{"2", "", true},
		{"3", "", true},
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
		became bool
	}
	inspect := func(state string, want, became bool) step { return step{state: state, want: want, became: became} }
	on := func(m events.Message) step { return step{m: &m} }
	tests := []struct {
		name       string
		stopSignal string
		steps      []step
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stopMarks{}
			for i, st := range tt.steps {
				if st.m != nil {
					s.event(*st.m)
					continue
				}
				got, became := s.judge("c1", st.state, tt.stopSignal)
				if got != st.want || became != st.became {
					t.Errorf("step %d: inspect %s: stopping %v, became %v; want %v, %v", i, st.state, got, became, st.want, st.became)
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
