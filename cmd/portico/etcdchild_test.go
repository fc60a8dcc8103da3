package main

import (
	"os"
	"testing"
)

// The etcd child serves only a data dir whose lock its parent holds.
func TestParentHoldsLock(t *testing.T) {
	dir := t.TempDir()
	if err := parentHoldsLock(dir, os.Getpid()); err == nil {
		t.Error("no lock file: accepted")
	}
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := parentHoldsLock(dir, os.Getpid()); err != nil {
		t.Errorf("lock held by the parent: %v", err)
	}
	if err := parentHoldsLock(dir, os.Getpid()+1); err == nil {
		t.Error("lock of another pid: accepted")
	}
	release()
	if err := parentHoldsLock(dir, os.Getpid()); err == nil {
		t.Error("released lock naming the parent: accepted")
	}
}
