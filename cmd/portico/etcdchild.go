package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/portico/portico/internal/store"
)

// etcdChildCommand is the hidden command `portico run` runs its embedded
// etcd in: a process of its own, so that etcd's panics and fatal exits
// (a damaged database, a full disk) end only it, never the process that
// supervises nginx (etcdsupervisor.go).
const etcdChildCommand = "etcd-child"

// readyLine is what the child prints on stdout once etcd serves.
const readyLine = "ready"

// cmdEtcdChild starts the embedded etcd of --data-dir once and serves
// until SIGTERM or until etcd fails; the parent restarts it. It serves
// only a data dir whose lock (lock.go) its parent holds: it is not a
// command for people, and it must never serve a dir beside a portico
// that does not supervise it.
func cmdEtcdChild(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	c := newCommand(etcdChildCommand, "Run the embedded etcd of `portico run` (started by it; not for direct use).", stderr)
	dataDir := addDataDir(c.fs, defaultDataDir)
	if err := c.parse(args, e); err != nil {
		return err
	}
	if err := parentHoldsLock(*dataDir, os.Getppid()); err != nil {
		return err
	}
	free, err := freeBytes(*dataDir)
	if err != nil {
		return err
	}
	seg := store.WALSegmentSize(free)
	store.SetWALSegmentSize(seg)
	srv, err := store.StartEmbedded(store.EmbeddedConfig{Dir: *dataDir})
	if err != nil {
		return err
	}
	defer srv.Close()
	if _, err := fmt.Fprintln(stdout, readyLine, srv.Endpoint(), seg/1e6); err != nil {
		return fmt.Errorf("tell the parent etcd is ready: %w", err)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-srv.Err():
		if err == nil {
			err = errors.New("stopped")
		}
		return fmt.Errorf("embedded etcd: %w", err)
	}
}

// parentHoldsLock checks that the data dir's lock is held, by ppid.
func parentHoldsLock(dataDir string, ppid int) error {
	p := filepath.Join(dataDir, "lock")
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("%s serves only the data dir of the `portico run` that started it: %w", etcdChildCommand, err)
	}
	if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid != ppid {
		return fmt.Errorf("%s serves only the data dir of the `portico run` that started it: lock %s names pid %q, the parent is %d",
			etcdChildCommand, p, strings.TrimSpace(string(b)), ppid)
	}
	// The pid in the file may be stale: the lock must also be held.
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("lock %s: %w", p, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		return fmt.Errorf("%s: lock %s is not held: its `portico run` is gone", etcdChildCommand, p)
	}
	return nil
}

// freeBytes is the space an unprivileged writer may still use on the
// filesystem of dir.
func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}
