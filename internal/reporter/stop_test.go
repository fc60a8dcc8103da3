package reporter_test

// The stop window, on the real Docker daemon and an embedded etcd: a
// container leaves the rotation when Docker sends its stop signal, not when
// it dies.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/reporter"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
)

// stopTimeout is `docker stop -t`: long enough that every check of the
// window happens while the container still runs.
const stopTimeout = 10 * time.Second

// hangs is a backend that ignores SIGTERM for as long as the tests care
// (HANG_ON_TERM: its ports stay open, it answers nothing) and SIGHUP
// altogether; only the SIGKILL after stopTimeout ends it.
func hangs(name string) dockertest.RunOptions {
	return dockertest.RunOptions{
		Name:   name,
		Env:    []string{"HANG_ON_TERM=10m"},
		Labels: map[string]string{"portico.vhost": name + ".test"},
	}
}

func stopping(want bool) func(store.Container) error {
	return func(c store.Container) error {
		if c.Stopping != want {
			return fmt.Errorf("state %q, stopping %v; want stopping %v", c.State, c.Stopping, want)
		}
		return nil
	}
}

// runningStopping: still running, marked stopping, so not live.
func runningStopping(c store.Container) error {
	if c.State != "running" || !c.Stopping || c.Live() {
		return fmt.Errorf("state %q, stopping %v, live %v; want running, stopping, not live", c.State, c.Stopping, c.Live())
	}
	return nil
}

// stopInBackground runs `docker stop -t 10` without waiting for it; the
// returned channel yields its error once the container is down.
func stopInBackground(h *harness, id string) <-chan error {
	done := make(chan error, 1)
	go func() { done <- h.env.TryStop(id, stopTimeout) }()
	return done
}

func waitStopped(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(stopTimeout + wait):
		t.Fatalf("docker stop -t %d did not return within %v", int(stopTimeout/time.Second), stopTimeout+wait)
	}
}

// requireRunning fails the test unless Docker still runs the container: the
// check it follows happened inside the stop window.
func (h *harness) requireRunning(t *testing.T, id, when string) {
	t.Helper()
	if st := h.env.Inspect(t, id).State; st == nil || !st.Running {
		t.Fatalf("%s: container no longer running (%+v); the stop window is too short for this machine", when, st)
	}
}

// watchStopping reports when the record of id is first written with
// stopping set, by an etcd watch (exact, unlike polling).
func (h *harness) watchStopping(t *testing.T, id string) <-chan time.Time {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	key := keys.Container(h.host, id)
	wch := h.etcd.Client.Watch(ctx, key)
	out := make(chan time.Time, 1)
	go func() {
		for resp := range wch {
			for _, ev := range resp.Events {
				if ev.Type != clientv3.EventTypePut {
					continue
				}
				if c, err := store.DecodeContainer(key, ev.Kv.Value); err == nil && c.Stopping {
					out <- time.Now()
					return
				}
			}
		}
	}()
	return out
}

// dockerKillEvent reports when Docker announces the first kill of id.
func (h *harness) dockerKillEvent(t *testing.T, id string) <-chan time.Time {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ev := h.env.Client.Events(ctx, client.EventsListOptions{
		Filters: make(client.Filters).Add("container", id).Add("event", "kill"),
	})
	out := make(chan time.Time, 1)
	go func() {
		select {
		case <-ev.Messages:
			out <- time.Now()
		case <-ev.Err:
		}
	}()
	return out
}

func within(ch <-chan time.Time, d time.Duration) (time.Time, error) {
	select {
	case at := <-ch:
		return at, nil
	case <-time.After(d):
		return time.Time{}, errors.New("not within " + d.String())
	}
}

// TestStopping: `docker stop` on a container that ignores SIGTERM marks its
// record stopping (not live) while Docker still runs it; resyncs keep the
// mark; once it died the record is exited and no longer stopping; started
// again it is live; removed, the record goes.
func TestStopping(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rr := h.start(t, reporter.Config{ResyncInterval: 250 * time.Millisecond, Labels: []string{dockertest.RunLabel + "=" + h.env.RunID}})
	id := h.env.Run(t, hangs("hangs"))
	h.waitRecord(t, id, "running and live", func(c store.Container) error {
		if !c.Live() || c.Stopping {
			return fmt.Errorf("state %q, stopping %v, live %v", c.State, c.Stopping, c.Live())
		}
		return nil
	})
	h.waitSignalsHandled(t, id)

	watched, killed := h.watchStopping(t, id), h.dockerKillEvent(t, id)
	start := time.Now()
	done := stopInBackground(h, id)
	_, polled := h.waitRecordWithin(t, stopTimeout/2, id, "record stopping while the container runs", runningStopping)
	h.requireRunning(t, id, "record seen stopping")
	written, err := within(watched, wait)
	if err != nil {
		t.Fatalf("etcd watch saw no stopping record: %v", err)
	}
	if kill, err := within(killed, wait); err == nil {
		t.Logf("docker stop called -> record stopping: %v (kill event after %v, record written %v after it); seen by polling after %v",
			written.Sub(start), kill.Sub(start), written.Sub(kill), polled)
	} else {
		t.Logf("docker stop called -> record stopping: %v; seen by polling after %v (kill event: %v)", written.Sub(start), polled, err)
	}

	// Resyncs list and inspect it again: the mark, which inspect cannot
	// tell, stays while it runs.
	before := rr.metric(t, "portico_reporter_resyncs_total")
	dockertest.Poll(t, wait, "two resyncs during the stop window", func() error {
		if n := rr.metric(t, "portico_reporter_resyncs_total"); n < before+2 {
			return fmt.Errorf("resyncs_total = %v, want %v", n, before+2)
		}
		return nil
	})
	if c, _ := h.record(t, id); runningStopping(c) != nil {
		t.Errorf("after resyncs: %v", runningStopping(c))
	}
	h.requireRunning(t, id, "after resyncs")

	waitStopped(t, done)
	h.waitRecord(t, id, "exited, no longer stopping", func(c store.Container) error {
		if c.State != "exited" || c.Stopping {
			return fmt.Errorf("state %q, stopping %v; want exited, not stopping", c.State, c.Stopping)
		}
		return nil
	})

	h.env.Start(t, id)
	h.waitRecord(t, id, "started again: live", func(c store.Container) error {
		if !c.Live() || c.Stopping {
			return fmt.Errorf("state %q, stopping %v, live %v", c.State, c.Stopping, c.Live())
		}
		return nil
	})

	h.env.Remove(t, id)
	h.waitGone(t, wait, id)
}

// ignores is a backend that logs and ignores SIGTERM and SIGINT, and keeps
// serving (IGNORE_TERM), and ignores SIGHUP and SIGQUIT (a JVM's thread
// dump) too.
func ignores(name string) dockertest.RunOptions {
	return dockertest.RunOptions{
		Name:   name,
		Env:    []string{"IGNORE_TERM=1"},
		Labels: map[string]string{"portico.vhost": name + ".test"},
	}
}

// waitSignalsHandled waits for the backend's "listening" line, which it
// logs once it handles signals: one sent before would end it.
func (h *harness) waitSignalsHandled(t *testing.T, id string) {
	t.Helper()
	dockertest.Poll(t, wait, "backend handles signals", func() error {
		if logs := h.env.Logs(t, id); !strings.Contains(logs, " listening on ") {
			return fmt.Errorf("logs: %q", logs)
		}
		return nil
	})
}

// live: running, not stopping, routed.
func live(c store.Container) error {
	if c.State != "running" || c.Stopping || !c.Live() {
		return fmt.Errorf("state %q, stopping %v, live %v; want running, live", c.State, c.Stopping, c.Live())
	}
	return nil
}

// TestReloadSignalsDoNotStop: SIGHUP and SIGUSR1 (reload, reopen logs),
// SIGQUIT (a JVM's thread dump) and SIGINT leave a container whose stop
// signal is SIGTERM in rotation. A rename after them is the barrier: events
// reach the reporter in order, so once the new name is recorded the signals
// were handled.
func TestReloadSignalsDoNotStop(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(t, reporter.Config{Labels: []string{dockertest.RunLabel + "=" + h.env.RunID}})
	o := ignores("reloads")
	o.StopSignal = "SIGTERM"
	id := h.env.Run(t, o)
	h.waitRecord(t, id, "running", live)
	h.waitSignalsHandled(t, id)

	for _, sig := range []string{"SIGHUP", "SIGUSR1", "SIGQUIT", "SIGINT"} {
		h.env.Kill(t, id, sig)
	}
	name := h.env.Rename(t, id, "reloaded")
	c, _ := h.waitRecord(t, id, "renamed after the signals", func(c store.Container) error {
		if c.Name != name {
			return fmt.Errorf("name %q, want %q", c.Name, name)
		}
		return nil
	})
	h.requireRunning(t, id, "after SIGHUP, SIGUSR1, SIGQUIT and SIGINT")
	if err := live(c); err != nil {
		t.Errorf("after SIGHUP, SIGUSR1, SIGQUIT and SIGINT: %v", err)
	}
}

// stopFlip is a write of a record whose stopping differs from the last.
type stopFlip struct {
	at       time.Time
	stopping bool
}

// watchStopFlips reports, by an etcd watch, each write of id's record that
// changes its stopping.
func (h *harness) watchStopFlips(t *testing.T, id string) <-chan stopFlip {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	key := keys.Container(h.host, id)
	wch := h.etcd.Client.Watch(ctx, key)
	out := make(chan stopFlip, 16)
	go func() {
		last := false
		for resp := range wch {
			for _, ev := range resp.Events {
				if ev.Type != clientv3.EventTypePut {
					continue
				}
				if c, err := store.DecodeContainer(key, ev.Kv.Value); err == nil && c.Stopping != last {
					last = c.Stopping
					select {
					case out <- stopFlip{time.Now(), last}:
					default:
					}
				}
			}
		}
	}()
	return out
}

// TestStopMarkLapsesAfterStopTimeout: `docker kill -s TERM` on a container
// that ignores SIGTERM and carries on takes it out of rotation, but only for
// its stop timeout (1 s here, the container's --stop-timeout) plus a grace:
// then, still running, it is live again, without any event or resync.
func TestStopMarkLapsesAfterStopTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 1 // seconds
	h := newHarness(t)
	h.start(t, reporter.Config{ResyncInterval: -1, Labels: []string{dockertest.RunLabel + "=" + h.env.RunID}})
	o := ignores("lapses")
	o.StopTimeout = new(int)
	*o.StopTimeout = timeout
	id := h.env.Run(t, o)
	h.waitRecord(t, id, "running and live", live)
	h.waitSignalsHandled(t, id)

	flips := h.watchStopFlips(t, id)
	h.env.Kill(t, id, "SIGTERM")
	h.waitRecord(t, id, "stopping after SIGTERM", runningStopping)
	h.waitRecord(t, id, "live again after the stop timeout", live)
	h.requireRunning(t, id, "back in rotation")

	var marked, unmarked time.Time
	for _, want := range []bool{true, false} {
		select {
		case f := <-flips:
			if f.stopping != want {
				t.Fatalf("record flipped to stopping %v, want %v", f.stopping, want)
			}
			if want {
				marked = f.at
			} else {
				unmarked = f.at
			}
		case <-time.After(wait):
			t.Fatalf("etcd watch saw no write with stopping %v", want)
		}
	}
	if held := unmarked.Sub(marked); held < timeout*time.Second {
		t.Errorf("out of rotation for %v, less than the stop timeout %ds", held, timeout)
	} else {
		t.Logf("out of rotation for %v (stop timeout %ds plus the grace)", held, timeout)
	}
}

// TestStopMarkDoesNotOutliveTheReporter: a mark is the reporter's memory of
// a kill event, not state of its own. A container that survived its stop
// signal with a stop timeout of -1 (its mark never lapses) is stopping in
// the record; a new reporter on the same store writes it live, since
// nothing says it is stopping now.
func TestStopMarkDoesNotOutliveTheReporter(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cfg := reporter.Config{Labels: []string{dockertest.RunLabel + "=" + h.env.RunID}}
	rr := h.start(t, cfg)
	o := ignores("forever")
	o.StopTimeout = new(int)
	*o.StopTimeout = -1
	id := h.env.Run(t, o)
	h.waitRecord(t, id, "running and live", live)
	h.waitSignalsHandled(t, id)
	h.env.Kill(t, id, "SIGTERM")
	h.waitRecord(t, id, "stopping after SIGTERM", runningStopping)
	rr.stop()
	if c, _ := h.record(t, id); runningStopping(c) != nil {
		t.Fatalf("record after the reporter stopped: %v", runningStopping(c))
	}

	h.start(t, cfg).waitSynced(t)
	h.waitRecord(t, id, "live after a new reporter's resync", live)
	h.requireRunning(t, id, "after the new reporter's resync")
}

// TestStoppingPaused: `docker stop` on a paused container sends the signal
// and then unpauses it (Docker logs kill, then unpause). That unpause is part
// of the stop and must not put the container back in rotation.
func TestStoppingPaused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(t, reporter.Config{Labels: []string{dockertest.RunLabel + "=" + h.env.RunID}})
	id := h.env.Run(t, hangs("paused"))
	h.waitRecord(t, id, "running", state("running"))
	h.waitSignalsHandled(t, id)
	h.env.Pause(t, id)
	h.waitRecord(t, id, "paused", state("paused"))

	done := stopInBackground(h, id)
	h.waitRecordWithin(t, stopTimeout/2, id, "unpaused by docker stop, stopping", runningStopping)
	// Barrier: every event before the rename, Docker's unpause included,
	// has been handled once the new name is recorded.
	name := h.env.Rename(t, id, "paused-renamed")
	c, _ := h.waitRecordWithin(t, stopTimeout/2, id, "renamed", func(c store.Container) error {
		if c.Name != name {
			return fmt.Errorf("name %q, want %q", c.Name, name)
		}
		return nil
	})
	h.requireRunning(t, id, "after the rename")
	if err := runningStopping(c); err != nil {
		t.Errorf("after Docker's unpause: %v", err)
	}
	waitStopped(t, done)
	h.waitRecord(t, id, "exited", stopping(false))
}
