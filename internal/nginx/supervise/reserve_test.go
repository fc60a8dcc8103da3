package supervise

import (
	"os"
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
