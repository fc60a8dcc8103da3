package porticotest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildStampsTheCommit: Build asks for the VCS stamp, so `portico
// version` names the commit even when GOFLAGS turns stamping off (as a Go
// env file may). It builds in a fresh clone of this checkout's commit, as a
// new operator has: Go stamps no git worktree (its .git is a file).
func TestBuildStampsTheCommit(t *testing.T) {
	t.Setenv("GOFLAGS", "-buildvcs=false")
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v (the test needs git and this checkout's history)", err)
	}
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := exec.Command("git", "clone", "-q", strings.TrimSpace(string(top)), clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	head, err := exec.Command("git", "-C", clone, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	commit := strings.TrimSpace(string(head))
	bin, err := buildIn(filepath.Join(clone, "cmd", "portico"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("portico version: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "commit:      "+commit+"\n") || strings.Contains(s, "(devel)") || strings.Contains(s, "unknown") {
		t.Errorf("portico version of a Build with GOFLAGS=-buildvcs=false:\n%s\nwant commit %s and no (devel) or unknown", s, commit)
	}
}
