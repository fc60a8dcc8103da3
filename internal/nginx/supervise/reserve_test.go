package supervise

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// The reserve holds real blocks (a sparse file would free nothing when it
// is released), is kept as it is, and goes before each start.
func TestSpaceReserve(t *testing.T) {
	prefix := t.TempDir()
	if err := os.Mkdir(filepath.Join(prefix, "logs"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := keepReserve(prefix); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(reserveFile(prefix), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != reserveSize || st.Blocks*512 < reserveSize {
		t.Fatalf("reserve: size %d, %d bytes allocated; want %d of both", st.Size, st.Blocks*512, reserveSize)
	}
	if err := keepReserve(prefix); err != nil {
		t.Fatalf("keeping an existing reserve: %v", err)
	}
	releaseReserve(prefix)
	if _, err := os.Stat(reserveFile(prefix)); !os.IsNotExist(err) {
		t.Fatalf("reserve still there after release: %v", err)
	}
}

// On a nearly full filesystem the reserve keeps what it can get, down to
// minReserve, instead of nothing: a real 64 KiB tmpfs (the test runs as
// root in CI).
func TestSpaceReservePartial(t *testing.T) {
	prefix := t.TempDir()
	logs := filepath.Join(prefix, "logs")
	if err := os.Mkdir(logs, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "portico-reserve-test", logs).CombinedOutput(); err != nil {
		t.Fatalf("mount a 64 KiB tmpfs (the test needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", logs).Run() })
	if err := keepReserve(prefix); err != nil {
		t.Fatalf("keepReserve on 64 KiB: %v", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(reserveFile(prefix), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size < minReserve || st.Size >= reserveSize || st.Blocks*512 < st.Size {
		t.Fatalf("partial reserve: size %d, %d bytes allocated; want between %d and %d, allocated", st.Size, st.Blocks*512, minReserve, reserveSize)
	}
	// Freed, it leaves room for a pid file.
	releaseReserve(prefix)
	if err := os.WriteFile(filepath.Join(logs, "nginx.pid"), []byte("123\n"), 0o644); err != nil {
		t.Fatalf("pid file after the release: %v", err)
	}
}
