package supervise

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Supervisor runs nginx as a child process in the foreground
// (-g 'daemon off;'), in its own process group, and restarts it from the
// config on disk (always the last good one) if it dies.
type Supervisor struct {
	Binary string
	// Prefix and Main are passed as -p and -c.
	Prefix, Main string
	Log          *slog.Logger
	// ReloadTimeout bounds the wait for new workers after a start or a
	// reload; 0 means 10 minutes (nginx parses 10k TLS vhosts in about a
	// minute). Reload also honours its context's deadline.
	ReloadTimeout time.Duration
	// StopTimeout bounds a graceful quit before the group is killed; 0
	// means 15s (nginx's worker_shutdown_timeout is 10s).
	StopTimeout time.Duration
	// Sockets are unix sockets nginx listens on: one left by a master that
	// was killed is removed before a start, or nginx could not bind it.
	Sockets []string
	// Stdout, when set, is nginx's standard output (an access log written
	// to /dev/stdout); otherwise stdout goes to the log like stderr.
	Stdout *os.File

	mu      sync.Mutex
	pid     int           // master pid; 0 when not running
	adopted bool          // pid was adopted from a previous portico (adopt.go)
	done    chan struct{} // closed when the current master exits
	up      chan struct{} // closed once the first start has workers
	once    sync.Once
}

// Up is closed once nginx first runs with workers.
func (s *Supervisor) Up() <-chan struct{} {
	s.init()
	return s.up
}

func (s *Supervisor) init() { s.once.Do(func() { s.up = make(chan struct{}) }) }

// Pid is the running master's pid, 0 if none.
func (s *Supervisor) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// Run starts nginx and keeps it running until ctx ends, then stops it
// gracefully, unless ctx ended with ErrLeaveRunning (leave.go). Restarts
// back off from 100ms to 10s; a run that lasted a minute resets the
// backoff.
func (s *Supervisor) Run(ctx context.Context) error {
	s.init()
	if pid, start, ok, why := s.findAdoptable(); ok {
		err := s.adopt(ctx, pid, start)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.Log.Error("starting a new nginx", "err", err)
	} else if why != "" {
		s.Log.Warn("not adopting the nginx a previous portico left running", "pid", pid, "why", why)
	}
	s.stopStale()
	backoff := 100 * time.Millisecond
	for {
		started := time.Now()
		cmd, done, logged, bind, err := s.start()
		if err == nil {
			err = s.waitWorkers(ctx, cmd.Process.Pid, done)
			if err != nil && ctx.Err() == nil {
				// nginx said why on stderr: wait for the last lines.
				select {
				case <-logged:
				case <-time.After(2 * time.Second):
				}
				if berr := bind.err(); berr != nil {
					s.stop(cmd, done)
					s.Log.Error("nginx cannot start", "err", berr)
					return berr
				}
			}
			if err == nil {
				s.running()
				select {
				case <-ctx.Done():
					if !s.leaving(ctx, cmd.Process.Pid) {
						s.stop(cmd, done)
					}
					return ctx.Err()
				case <-done:
					err = fmt.Errorf("exited: %s", cmd.ProcessState)
				}
			} else {
				s.stop(cmd, done)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(started) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		s.Log.Error("nginx died; restarting from the last good config", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// running marks nginx, started or adopted, as serving. The space reserve
// is taken back first, before Up says nginx runs: the stage's first write
// after a start (a change that waited for space) must not take what
// nginx's next start needs.
func (s *Supervisor) running() {
	if err := keepReserve(s.Prefix); err != nil {
		s.Log.Warn("cannot keep nginx's space reserve; on a full disk a restart of nginx may fail to write its pid file", "file", reserveFile(s.Prefix), "err", err)
	}
	select {
	case <-s.up:
	default:
		close(s.up)
	}
}

func (s *Supervisor) start() (*exec.Cmd, chan struct{}, chan struct{}, *bindWatch, error) {
	for _, sock := range s.Sockets {
		if fi, err := os.Lstat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if err := os.Remove(sock); err != nil {
				return nil, nil, nil, nil, fmt.Errorf("stale socket: %w", err)
			}
		}
	}
	releaseReserve(s.Prefix)
	cmd := exec.Command(s.Binary, "-p", s.Prefix, "-c", s.Main, "-g", "daemon off;")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A plain pipe, not StderrPipe: workers inherit it, and the master's
	// exit must not wait for them to close it.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if s.Stdout != nil {
		cmd.Stdout = s.Stdout
	}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, nil, nil, nil, fmt.Errorf("start %s: %w", s.Binary, err)
	}
	bind, logged := &bindWatch{}, make(chan struct{})
	go func() { s.copyLog(pr, bind); pr.Close(); close(logged) }()
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		// Orphaned workers would keep the listening sockets: kill the group.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		s.mu.Lock()
		if s.pid == cmd.Process.Pid {
			s.pid = 0
		}
		s.mu.Unlock()
		close(done)
	}()
	s.mu.Lock()
	s.pid, s.done, s.adopted = cmd.Process.Pid, done, false
	s.mu.Unlock()
	s.Log.Info("nginx started", "pid", cmd.Process.Pid)
	return cmd, done, logged, bind, nil
}

// copyLog turns nginx's stderr into log records.
func (s *Supervisor) copyLog(r io.Reader, bind *bindWatch) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		bind.see(line)
		lvl := slog.LevelWarn
		if strings.Contains(line, "[emerg]") || strings.Contains(line, "[alert]") || strings.Contains(line, "[crit]") || strings.Contains(line, "[error]") {
			lvl = slog.LevelError
		}
		s.Log.Log(context.Background(), lvl, "nginx", "line", line)
	}
}

// waitWorkers waits until the master has children: it has bound its
// sockets and forked workers.
func (s *Supervisor) waitWorkers(ctx context.Context, pid int, done <-chan struct{}) error {
	deadline := time.After(s.reloadTimeout())
	for {
		if ws, _ := children(pid); len(ws) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			return errors.New("exited during start")
		case <-deadline:
			return errors.New("no workers after start")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Supervisor) reloadTimeout() time.Duration {
	if s.ReloadTimeout > 0 {
		return s.ReloadTimeout
	}
	return 10 * time.Minute
}

// Reload sends SIGHUP to the master and waits until it has forked a worker
// that was not there before (nginx forks new workers only after it parsed
// the new config and opened its sockets) and every old worker has stopped
// accepting connections: only then does every new connection get the new
// config. (A reload nginx refuses, e.g. a port it cannot bind,
// leaves the old workers alone and times out here.) Reading
// /proc/<pid>/task/<pid>/children is a few syscalls per poll.
//
// With no nginx running it does nothing and reports false: the next start
// reads the new file.
func (s *Supervisor) Reload(ctx context.Context) (bool, error) {
	s.mu.Lock()
	pid, done := s.pid, s.done
	s.mu.Unlock()
	if pid == 0 {
		return false, nil
	}
	old, err := children(pid)
	if err != nil {
		return false, fmt.Errorf("nginx pid %d: %w", pid, err)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return false, fmt.Errorf("signal nginx pid %d: %w", pid, err)
	}
	return awaitReload(ctx, pid, old, s.reloadTimeout(), done)
}

// awaitReload waits, after a SIGHUP to the master pid whose children were
// old, until the master has forked a new worker and no old worker still
// accepts connections (or oldWorkersGrace passed since the fork). It
// reports false with no error when done closes (the master died), and an
// error when ctx ends or timeout passes first.
func awaitReload(ctx context.Context, pid int, old []int, timeout time.Duration, done <-chan struct{}) (bool, error) {
	deadline := time.After(timeout)
	forked := false
	var forkedAt time.Time
	for {
		if !forked {
			now, _ := children(pid)
			if forked = slices.ContainsFunc(now, func(p int) bool { return !slices.Contains(old, p) }); forked {
				forkedAt = time.Now()
			}
		}
		// The new workers serve the new config, but until an old worker
		// has seen its SIGQUIT it still accepts connections and answers
		// them from the old one. nginx renames a worker "is shutting down"
		// just before it closes its listening sockets, so the reload is
		// whole once no old worker is still accepting.
		// A worker that does not get there in oldWorkersGrace (stuck in
		// a request) does not hold the reload up: it took effect.
		if forked && (!slices.ContainsFunc(old, stillAccepting) || time.Since(forkedAt) > oldWorkersGrace) {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("nginx pid %d started no new worker after SIGHUP (see its log): %w", pid, ctx.Err())
		case <-done:
			return false, nil // died; the restart reads the new file
		case <-deadline:
			return false, fmt.Errorf("nginx pid %d started no new worker within %s after SIGHUP (see its log)", pid, timeout)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (s *Supervisor) stopTimeout() time.Duration {
	if s.StopTimeout == 0 {
		return 15 * time.Second
	}
	return s.StopTimeout
}

// stop asks the master to quit gracefully (SIGQUIT), then kills the group.
func (s *Supervisor) stop(cmd *exec.Cmd, done <-chan struct{}) {
	to := s.stopTimeout()
	cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-done:
	case <-time.After(to):
		s.Log.Warn("nginx did not quit in time; killing it", "pid", cmd.Process.Pid, "timeout", to)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// oldWorkersGrace bounds the wait for old workers to stop accepting after
// the new ones started.
const oldWorkersGrace = 5 * time.Second

// stillAccepting reports whether pid is an nginx worker that has not begun
// its graceful shutdown. A pid that is gone (or reused by a process that is
// no worker) is not.
func stillAccepting(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	title := string(b)
	return strings.Contains(title, "worker process") && !strings.Contains(title, "shutting down")
}

// children lists the child pids of pid from /proc.
func children(pid int) ([]int, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "task", strconv.Itoa(pid), "children"))
	if err != nil {
		return nil, err
	}
	var ps []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			ps = append(ps, n)
		}
	}
	return ps, nil
}

// ExternalReloader reloads an nginx Portico does not run: by SIGHUP to the
// pid in PidFile, or by running Command (no shell). After a SIGHUP it waits
// for the reload to be whole, as Supervisor.Reload does, when it can see
// the master's children (same pid namespace), for at most
// externalReloadTimeout; otherwise, and after Command, it cannot see the
// reload finish and reports success once the signal or command succeeded.
type ExternalReloader struct {
	PidFile string
	Command []string
}

// Reload signals or runs the command.
func (e ExternalReloader) Reload(ctx context.Context) (bool, error) {
	if len(e.Command) > 0 {
		out, err := exec.CommandContext(ctx, e.Command[0], e.Command[1:]...).CombinedOutput()
		if err != nil {
			return false, fmt.Errorf("reload command %q: %w: %s", e.Command, err, OneLine(out))
		}
		return true, nil
	}
	b, err := os.ReadFile(e.PidFile)
	if err != nil {
		return false, fmt.Errorf("nginx pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return false, fmt.Errorf("nginx pid file %s: %q is not a pid", e.PidFile, strings.TrimSpace(string(b)))
	}
	old, cerr := children(pid)
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return false, fmt.Errorf("signal nginx pid %d from %s: %w", pid, e.PidFile, err)
	}
	if cerr != nil {
		return true, nil // another pid namespace: nothing to watch
	}
	// With no done channel awaitReload reports true or an error.
	if _, err := awaitReload(ctx, pid, old, externalReloadTimeout, nil); err != nil {
		return false, fmt.Errorf("nginx pid file %s: %w", e.PidFile, err)
	}
	return true, nil
}

// externalReloadTimeout bounds ExternalReloader's wait for new workers.
const externalReloadTimeout = 30 * time.Second
