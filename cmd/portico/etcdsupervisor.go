package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico/portico/internal/store"
)

const (
	// childLogLines bounds the lines of one etcd child's output that go
	// to the log (a panic's stack is hundreds); the rest are counted.
	childLogLines = 60
	// childTailLines is how many last lines Diagnose reads.
	childTailLines = 40
	// childLineMax cuts a line of the child's output.
	childLineMax = 2048
	// childStopWait is how long Close waits for the child after SIGTERM
	// before it kills it.
	childStopWait = 10 * time.Second
)

// etcdSupervisor runs the embedded etcd of `portico run` in a child
// process (`portico etcd-child`) and starts it again with backoff when it
// fails or dies. Whatever etcd does (panic, log.Fatal, os.Exit on a
// damaged database or a full disk) ends only the child: the supervised
// nginx keeps serving its last good config and the other stages retry.
// Each failure is logged once with the file at fault and what to do,
// exported as metrics and written to the data dir's health file for
// `portico status`. Only the end of ctx ends Run; Close stops the child.
type etcdSupervisor struct {
	dir      string
	exe      string
	log      *slog.Logger
	up       prometheus.Gauge
	failure  *prometheus.GaugeVec
	health   *store.HealthWriter
	onChange func()
	// after, when set, holds the first start back until it is closed
	// (the nginx stage's Started: nginx serves its last good state, or
	// there is none) or afterWait has passed: nginx starts before the
	// store touches the disk, so on a full disk etcd cannot take the
	// space nginx needs to start.
	after     <-chan struct{}
	afterWait time.Duration

	mu       sync.Mutex
	cur      store.EmbeddedHealth
	cmd      *exec.Cmd
	done     chan struct{} // closed when cmd has exited
	failures int
}

func newEtcdSupervisor(dataDir string, reg prometheus.Registerer, log *slog.Logger) (*etcdSupervisor, error) {
	exe, err := selfExe()
	if err != nil {
		return nil, err
	}
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "portico_embedded_etcd_up",
		Help: "1 while the embedded etcd serves, 0 while it fails (nginx keeps its last good config)."})
	failure := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "portico_embedded_etcd_failure",
		Help: "1 for the reason of the embedded etcd's current failure (disk-full, corrupt-db, wal, data-dir, other), 0 for the others; all 0 while it serves. `portico status` says what to do."},
		[]string{"reason"})
	for _, r := range store.Reasons {
		failure.WithLabelValues(r).Set(0)
	}
	for _, c := range []prometheus.Collector{up, failure} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("embedded etcd metrics: %w", err)
		}
	}
	return &etcdSupervisor{dir: absPath(dataDir), exe: exe, log: log, up: up, failure: failure,
		health: store.NewHealthWriter(dataDir), onChange: func() {}}, nil
}

// selfExe is this binary, as the kernel has it open: the same code even
// if the file was replaced by an upgrade since.
func selfExe() (string, error) {
	if _, err := os.Stat("/proc/self/exe"); err == nil {
		return "/proc/self/exe", nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("embedded etcd: find this binary to run it as the etcd process: %w", err)
	}
	return exe, nil
}

// Health is the current report (for the web page).
func (e *etcdSupervisor) Health() store.EmbeddedHealth {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cur
}

func (e *etcdSupervisor) report(h store.EmbeddedHealth) {
	e.mu.Lock()
	h.Failures = e.failures
	e.cur = h
	e.mu.Unlock()
	if h.Up {
		e.up.Set(1)
	} else {
		e.up.Set(0)
	}
	for _, r := range store.Reasons {
		v := 0.0
		if !h.Up && h.Reason == r {
			v = 1
		}
		e.failure.WithLabelValues(r).Set(v)
	}
	if err := e.health.Write(h); err != nil {
		e.log.Warn("embedded etcd: cannot write its health file; status cannot say why the store is down (the log and metrics still do)", "err", err)
	}
	e.onChange()
}

func (e *etcdSupervisor) Run(ctx context.Context) error {
	backoff := time.Second
	e.report(store.EmbeddedHealth{Since: time.Now().UTC(), Reason: store.ReasonStarting})
	if e.after != nil {
		select {
		case <-e.after:
		case <-time.After(e.afterWait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		started := time.Now()
		tail, err := e.runChild(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(started) > 5*time.Minute {
			backoff = time.Second
		}
		h := store.Diagnose(tail, err, e.dir)
		h.Since = time.Now().UTC()
		e.mu.Lock()
		e.failures++
		e.mu.Unlock()
		e.report(h)
		e.log.Error("embedded etcd failed; nginx keeps serving its last good config; starting etcd again",
			"err", err, "reason", h.Reason, "file", h.File, "problem", h.Problem, "do", h.Advice, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

// runChild starts the child and returns when it exits (its last lines
// and exit error) or when ctx ends (the child keeps running: Close stops
// it, after the stages that use it).
func (e *etcdSupervisor) runChild(ctx context.Context) ([]string, error) {
	out := &childOutput{log: e.log}
	ready := make(chan []string, 1)
	cmd := exec.Command(e.exe, etcdChildCommand, "--data-dir", e.dir)
	cmd.Stdout = &readyWriter{ch: ready}
	cmd.Stderr = out
	cmd.Env = os.Environ()
	// The child dies with portico, even on SIGKILL: no etcd outlives the
	// process that holds the data dir's lock.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s %s: %w", e.exe, etcdChildCommand, err)
	}
	done := make(chan struct{})
	var werr error
	go func() { werr = cmd.Wait(); close(done) }()
	e.mu.Lock()
	e.cmd, e.done = cmd, done
	e.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case r := <-ready:
			e.report(store.EmbeddedHealth{Up: true, Since: time.Now().UTC()})
			e.log.Info("embedded etcd serving", "endpoint", r[0], "dir", e.dir, "pid", cmd.Process.Pid, "wal_segment_mb", strings.Join(r[1:], ""))
			ready = nil
		case <-done:
			e.mu.Lock()
			e.cmd, e.done = nil, nil
			e.mu.Unlock()
			if werr == nil {
				werr = errors.New("exited")
			}
			return out.tail(), fmt.Errorf("etcd process %d: %w", cmd.Process.Pid, werr)
		}
	}
}

// Close stops the child: SIGTERM, then SIGKILL after childStopWait. It
// records that the store is stopped.
func (e *etcdSupervisor) Close() {
	e.mu.Lock()
	cmd, done := e.cmd, e.done
	e.cmd, e.done = nil, nil
	e.mu.Unlock()
	if cmd != nil {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(childStopWait):
			cmd.Process.Kill()
			<-done
		}
	}
	e.report(store.EmbeddedHealth{Since: time.Now().UTC(), Reason: store.ReasonStopped, Problem: "portico run stopped"})
	e.health.Close()
}

// readyWriter watches the child's stdout for its ready line.
type readyWriter struct {
	ch  chan []string // endpoint, WAL segment MB
	buf []byte
}

func (w *readyWriter) Write(p []byte) (int, error) {
	if len(w.buf) < childLineMax {
		w.buf = append(w.buf, p...)
	}
	if i := bytes.IndexByte(w.buf, '\n'); i >= 0 {
		if f := strings.Fields(string(w.buf[:i])); len(f) >= 2 && f[0] == readyLine {
			select {
			case w.ch <- f[1:]:
			default:
			}
		}
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// childOutput logs the child's stderr line by line under stage=etcd,
// at most childLogLines lines per child, and keeps the last
// childTailLines for Diagnose.
type childOutput struct {
	log *slog.Logger

	mu      sync.Mutex
	partial []byte
	last    []string
	logged  int
	dropped int
}

func (o *childOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			if len(o.partial) > childLineMax {
				o.line(string(o.partial[:childLineMax]))
				o.partial = o.partial[:0]
			}
			break
		}
		o.line(string(o.partial[:i]))
		o.partial = o.partial[i+1:]
	}
	return len(p), nil
}

func (o *childOutput) line(l string) {
	l = strings.TrimSpace(l)
	if l == "" {
		return
	}
	if len(l) > childLineMax {
		l = l[:childLineMax] + "…"
	}
	o.last = append(o.last, l)
	if len(o.last) > childTailLines {
		o.last = o.last[len(o.last)-childTailLines:]
	}
	if o.logged < childLogLines {
		o.logged++
		o.log.Warn("etcd process", "stage", "etcd", "line", l)
		return
	}
	o.dropped++
}

func (o *childOutput) tail() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.partial) > 0 {
		o.line(string(o.partial))
		o.partial = nil
	}
	if o.dropped > 0 {
		o.log.Warn("etcd process: more output not logged", "stage", "etcd", "lines", o.dropped)
		o.dropped = 0
	}
	return append([]string(nil), o.last...)
}
