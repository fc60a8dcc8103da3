package main

import (
	"os"
	"strings"
	"testing"
)

// Letting go of the executable's pages advises only its read-only
// mappings, and the process runs on (its code comes back on access).
func TestDropExePages(t *testing.T) {
	n, err := dropExePages()
	if err != nil {
		t.Fatal(err)
	}
	if n <= 0 {
		t.Fatalf("advised %d bytes: no read-only mapping of the executable found", n)
	}
	// Code and read-only data of the executable still work afterwards.
	if got := strings.Repeat("ab", 3); got != "ababab" {
		t.Fatalf("after the drop: %q", got)
	}
	if _, err := parseBytes("96MiB"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile("/proc/self/maps"); err != nil {
		t.Fatal(err)
	}
}
