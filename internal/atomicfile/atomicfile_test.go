package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, c := range []struct {
		data string
		mode os.FileMode
	}{{"one", 0o600}, {"two, longer", 0o644}} {
		if err := Write(p, []byte(c.data), c.mode); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		fi, serr := os.Stat(p)
		if err != nil || serr != nil || string(b) != c.data || fi.Mode().Perm() != c.mode {
			t.Errorf("after writing %q %v: %q %v (%v %v)", c.data, c.mode, b, fi.Mode(), err, serr)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if err := Write(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
		t.Error("writing into a missing dir succeeded")
	}
}

// An unchanged file is not rewritten (a restart on a full disk needs no
// space); a changed content or mode is.
func TestWriteIfChanged(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for i, c := range []struct {
		data  string
		mode  os.FileMode
		wrote bool
	}{
		{"one", 0o600, true},
		{"one", 0o600, false},
		{"one", 0o644, true},
		{"two", 0o644, true},
		{"two", 0o644, false},
	} {
		before, _ := os.Stat(p)
		wrote, err := WriteIfChanged(p, []byte(c.data), c.mode)
		if err != nil || wrote != c.wrote {
			t.Fatalf("step %d: wrote %v, %v; want %v", i, wrote, err, c.wrote)
		}
		after, _ := os.Stat(p)
		if !c.wrote && !os.SameFile(before, after) {
			t.Errorf("step %d: file replaced although unchanged", i)
		}
		if b, _ := os.ReadFile(p); string(b) != c.data || after.Mode().Perm() != c.mode {
			t.Errorf("step %d: %q %v", i, b, after.Mode())
		}
	}
	// Unchanged, in a dir where nothing can be created: no error.
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	if wrote, err := WriteIfChanged(p, []byte("two"), 0o644); wrote || err != nil {
		t.Errorf("unchanged in a read-only dir: %v %v", wrote, err)
	}
}
