package passwordfile

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestEnsureCreatesOnceAndKeeps(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "auth", "reporter")
	path := filepath.Join(dir, "password")
	created, err := Ensure(path)
	if err != nil || !created {
		t.Fatalf("first Ensure: created=%v err=%v, want a new file", created, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pw := strings.TrimSuffix(string(b), "\n")
	if len(pw) != 43 || strings.ContainsAny(pw, "\n\r \"'$=+/") {
		t.Errorf("generated password %q: want 43 base64url characters", pw)
	}
	for p, want := range map[string]os.FileMode{path: FileMode, dir: DirMode} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, st.Mode().Perm(), err, want)
		}
	}
	created, err = Ensure(path)
	if err != nil || created {
		t.Fatalf("second Ensure: created=%v err=%v, want the file kept", created, err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(b) {
		t.Errorf("second Ensure changed the password: %q -> %q", b, again)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("dir holds %d entries, want only the password file (no temporary left)", len(ents))
	}
}

func TestEnsureKeepsAnOperatorsPassword(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root")
	if err := os.WriteFile(path, []byte("chosen\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if created, err := Ensure(path); err != nil || created {
		t.Fatalf("Ensure on an existing file: created=%v err=%v", created, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "chosen\n" {
		t.Errorf("file now %q, want it untouched", b)
	}
}

func TestEnsureRacesKeepOnePassword(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pw")
	var wg sync.WaitGroup
	var mu sync.Mutex
	creators := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			created, err := Ensure(path)
			if err != nil {
				t.Error(err)
			}
			if created {
				mu.Lock()
				creators++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if creators != 1 {
		t.Errorf("%d callers created the file, want exactly 1", creators)
	}
}

func TestEnsureErrorNamesThePath(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(parent, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(parent, "pw")
	if _, err := Ensure(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Ensure under a regular file: %v, want an error naming %s", err, path)
	}
}
