package supervise

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PidFile is where the generated main config tells nginx to write its pid.
func PidFile(prefix string) string { return filepath.Join(prefix, "logs", "nginx.pid") }

// isOurMaster reports whether a /proc/<pid>/cmdline is an nginx master
// started with -p prefix. nginx rewrites its argv into one string,
// "nginx: master process nginx -p /dir -c ...", so fields are split on
// NUL and space alike.
func isOurMaster(cmdline []byte, prefix string) bool {
	fields := strings.Fields(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
	if len(fields) < 3 || fields[0] != "nginx:" || fields[1] != "master" {
		return false
	}
	for i := 0; i+1 < len(fields); i++ {
		if fields[i] == "-p" && filepath.Clean(fields[i+1]) == filepath.Clean(prefix) {
			return true
		}
	}
	return false
}

// running reports whether pid is alive and not a zombie (an orphan whose
// parent does not reap it still holds its /proc entry, but no ports).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// stopStale stops an nginx master a killed portico left running on this
// prefix, so the new one can take the ports. It asks it to quit, then kills
// its process group.
func (s *Supervisor) stopStale() {
	b, err := os.ReadFile(PidFile(s.Prefix))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !isOurMaster(cmdline, s.Prefix) || !running(pid) {
		return
	}
	s.Log.Warn("stopping the nginx a previous portico left running", "pid", pid, "prefix", s.Prefix)
	syscall.Kill(pid, syscall.SIGQUIT)
	deadline := time.Now().Add(s.stopTimeout())
	for running(pid) && time.Now().Before(deadline) {
		<-time.After(20 * time.Millisecond)
	}
	syscall.Kill(-pid, syscall.SIGKILL)
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 250 && running(pid); i++ {
		<-time.After(20 * time.Millisecond)
	}
}
