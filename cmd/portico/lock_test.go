package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// flock conflicts between two open files even in one process, so the
// second lock stands for a second `portico run`.
func TestLockDataDir(t *testing.T) {
	dir := t.TempDir()
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "lock"))
	if err != nil || strings.TrimSpace(string(b)) != fmt.Sprint(os.Getpid()) {
		t.Fatalf("lock file %q, %v", b, err)
	}
	_, err = lockDataDir(dir)
	want := fmt.Sprintf("data dir %s in use by pid %d", dir, os.Getpid())
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("second lock: %v, want %q", err, want)
	}
	release()
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}
