package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// buildVersion is what `portico version` prints, read from the binary's
// build info (the go command records it; nothing is stamped by hand).
type buildVersion struct {
	Module   string // main module version; "(devel)" for a build from a work tree
	Commit   string // vcs.revision, or "unknown"
	Modified bool   // vcs.modified: the work tree had uncommitted changes
	Time     string // vcs.time, the commit's time (Go records no build time), or "unknown"
	Go       string // the Go toolchain that built the binary
}

// versionOf derives the version from build info; ok is ReadBuildInfo's
// second result. A binary built without VCS information (`go test`, `go run`,
// -buildvcs=false, a tree without .git) reports "unknown" commit and time.
func versionOf(bi *debug.BuildInfo, ok bool) buildVersion {
	v := buildVersion{Module: "(devel)", Commit: "unknown", Time: "unknown", Go: "unknown"}
	if !ok || bi == nil {
		return v
	}
	if bi.Main.Version != "" {
		v.Module = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if s.Value != "" {
				v.Commit = s.Value
			}
		case "vcs.time":
			if s.Value != "" {
				v.Time = s.Value
			}
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func (v buildVersion) write(w io.Writer) error {
	commit := v.Commit
	if v.Modified {
		commit += " (modified)"
	}
	_, err := fmt.Fprintf(w, "portico %s\ncommit:      %s\ncommit time: %s\ngo:          %s\n", v.Module, commit, v.Time, v.Go)
	return err
}

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	c := newCommand("version", "Print the module version, the VCS commit (and whether the tree was modified), the commit's time and the Go version, from the binary's build info.", stderr)
	if err := c.parse(args, env{}); err != nil {
		return err
	}
	return versionOf(debug.ReadBuildInfo()).write(stdout)
}

// short is the version for a User-Agent: the module version, or "dev".
func (v buildVersion) short() string {
	if v.Module == "(devel)" {
		return "dev"
	}
	return v.Module
}
