package supervise

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A portico killed with SIGKILL (a crash, the OOM killer) leaves its nginx
// serving. The next portico adopts that nginx instead of replacing it: a
// replacement must stop it before it can bind the ports, and every
// connection in between is refused (12 per restart, about 130 ms, were
// measured before adoption). The adopted master is not portico's child, so
// it is supervised by polling /proc, identified by its pid and start time
// (a reused pid has another start time).

// masterInfo is what /proc says about a process named in nginx's pid file.
type masterInfo struct {
	Cmdline []byte // /proc/<pid>/cmdline
	Exe     string // /proc/<pid>/exe's target
	UID     int    // owner of /proc/<pid>
	State   byte   // /proc/<pid>/stat's state: 'Z' is a zombie
	Workers int    // its children
}

// adoptable decides whether the process described by m is a healthy nginx
// master this supervisor may adopt: an nginx master started with our
// prefix and main config, from the nginx binary we would start (resolved
// path; an upgraded, deleted binary is replaced), by our user, alive and
// with workers. why says what failed.
func adoptable(m masterInfo, prefix, main, binary string, uid int) (ok bool, why string) {
	switch {
	case !isOurMaster(m.Cmdline, prefix):
		return false, "not an nginx master of this prefix"
	case !hasArg(m.Cmdline, "-c", main):
		return false, "started with another main config"
	case m.UID != uid:
		return false, fmt.Sprintf("runs as uid %d, not %d", m.UID, uid)
	case m.Exe == "" || m.Exe != binary:
		return false, fmt.Sprintf("runs %q, not %q", m.Exe, binary)
	case m.State == 0 || m.State == 'Z' || m.State == 'X':
		return false, "not running"
	case m.Workers == 0:
		return false, "has no workers"
	}
	return true, ""
}

// hasArg reports whether cmdline (split on NUL and space, as isOurMaster)
// holds flag followed by the path val.
func hasArg(cmdline []byte, flag, val string) bool {
	fields := strings.Fields(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
	for i := 0; i+1 < len(fields); i++ {
		if fields[i] == flag && filepath.Clean(fields[i+1]) == filepath.Clean(val) {
			return true
		}
	}
	return false
}

// readMaster reads masterInfo for pid, and its start time.
func readMaster(pid int) (masterInfo, uint64, error) {
	proc := "/proc/" + strconv.Itoa(pid)
	var m masterInfo
	var err error
	if m.Cmdline, err = os.ReadFile(proc + "/cmdline"); err != nil {
		return m, 0, err
	}
	m.Exe, _ = os.Readlink(proc + "/exe") // "" when we may not look
	if fi, err := os.Stat(proc); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			m.UID = int(st.Uid)
		}
	}
	state, start, err := procStat(pid)
	if err != nil {
		return m, 0, err
	}
	m.State = state
	ws, _ := children(pid)
	m.Workers = len(ws)
	return m, start, nil
}

// procStat returns a process's state letter and start time (clock ticks
// since boot) from /proc/<pid>/stat.
func procStat(pid int) (byte, uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseStat(b)
}

// parseStat reads the state (field 3) and starttime (field 22) of a
// /proc/<pid>/stat line; the command (field 2) may hold spaces and ')'.
func parseStat(b []byte) (byte, uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("stat %q: no command", b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("stat %q: %d fields after the command", b, len(f))
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("stat %q: bad state or start time", b)
	}
	return f[0][0], start, nil
}

// binaryPath resolves the nginx binary as /proc/<pid>/exe names it.
func binaryPath(bin string) string {
	p, err := exec.LookPath(bin)
	if err != nil {
		return ""
	}
	if p, err = filepath.Abs(p); err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// findAdoptable returns the pid and start time of the nginx master named in
// the prefix's pid file if it may be adopted (adoptable); ok false and why
// otherwise (why "" when there is no live process at all).
func (s *Supervisor) findAdoptable() (pid int, start uint64, ok bool, why string) {
	b, err := os.ReadFile(PidFile(s.Prefix))
	if err != nil {
		return 0, 0, false, ""
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, 0, false, ""
	}
	m, start, err := readMaster(pid)
	if err != nil {
		return pid, 0, false, ""
	}
	ok, why = adoptable(m, s.Prefix, s.Main, binaryPath(s.Binary), os.Geteuid())
	return pid, start, ok, why
}

// adopt supervises the nginx master pid (start time start) that a previous
// portico left running: it makes it read the files on disk (SIGHUP, as a
// new start would read them), then watches it until ctx ends (and stops it
// as Run stops its own) or it exits (and returns, so Run starts a new one).
func (s *Supervisor) adopt(ctx context.Context, pid int, start uint64) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if st, t, err := procStat(pid); err != nil || t != start || st == 'Z' || st == 'X' {
				if err == nil && t == start {
					reap(pid) // our own child before a restart in place
				}
				// Orphaned workers would keep the listening sockets.
				syscall.Kill(-pid, syscall.SIGKILL)
				s.mu.Lock()
				if s.pid == pid {
					s.pid = 0
				}
				s.mu.Unlock()
				return
			}
			// Watched past ctx's end too: stopPid waits on done.
			time.Sleep(50 * time.Millisecond)
		}
	}()
	s.mu.Lock()
	s.pid, s.done, s.adopted = pid, done, true
	s.mu.Unlock()
	if ownChild(pid) {
		s.Log.Info("restarted in place: adopted the nginx this process ran before its exec; not restarting it", "pid", pid, "prefix", s.Prefix)
	} else {
		s.Log.Warn("adopted the nginx a previous portico left running; not restarting it", "pid", pid, "prefix", s.Prefix)
	}
	s.relog(pid)
	// The previous portico may have died between writing a config and
	// reloading it: load what is on disk, gracefully.
	rctx, cancel := context.WithTimeout(ctx, s.reloadTimeout())
	_, err := s.Reload(rctx)
	cancel()
	if err != nil && ctx.Err() == nil {
		s.Log.Error("the adopted nginx did not reload the config on disk; replacing it", "pid", pid, "err", err)
		s.stopPid(pid, done)
		return err
	}
	s.running()
	select {
	case <-ctx.Done():
		if !s.leaving(ctx, pid) {
			s.stopPid(pid, done)
		}
		return ctx.Err()
	case <-done:
		return errors.New("the adopted nginx exited")
	}
}

// relog copies the adopted nginx's stderr into the log again: its stderr is
// the pipe the dead portico read, which /proc reopens for reading.
func (s *Supervisor) relog(pid int) {
	f, err := os.OpenFile("/proc/"+strconv.Itoa(pid)+"/fd/2", os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err == nil {
		var fi os.FileInfo
		if fi, err = f.Stat(); err == nil && fi.Mode()&os.ModeNamedPipe == 0 {
			f.Close()
			err = errors.New("not a pipe")
		}
	}
	if err != nil {
		s.Log.Warn("the adopted nginx's own log lines are lost until it restarts", "pid", pid, "err", err)
		return
	}
	go func() { s.copyLog(f, &bindWatch{}); f.Close() }()
}

// stopPid stops a master that is not our child: SIGQUIT, then the group is
// killed after StopTimeout.
func (s *Supervisor) stopPid(pid int, done <-chan struct{}) {
	to := s.stopTimeout()
	syscall.Kill(pid, syscall.SIGQUIT)
	select {
	case <-done:
	case <-time.After(to):
		s.Log.Warn("nginx did not quit in time; killing it", "pid", pid, "timeout", to)
		syscall.Kill(-pid, syscall.SIGKILL)
		<-done
	}
}

// Adopted reports whether the running nginx was adopted from a previous
// portico rather than started by this one.
func (s *Supervisor) Adopted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.adopted && s.pid != 0
}
