package main

import (
	"bytes"
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionOf(t *testing.T) {
	for _, tt := range []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want buildVersion
	}{
		{name: "no build info", ok: false,
			want: buildVersion{Module: "(devel)", Commit: "unknown", Time: "unknown", Go: "unknown"}},
		{name: "go test build: no vcs", ok: true, bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/portico/portico", Version: "(devel)"}},
			want: buildVersion{Module: "(devel)", Commit: "unknown", Time: "unknown", Go: "go1.26.8"}},
		{name: "empty main version", ok: true, bi: &debug.BuildInfo{GoVersion: "go1.26.8"},
			want: buildVersion{Module: "(devel)", Commit: "unknown", Time: "unknown", Go: "go1.26.8"}},
		{name: "clean checkout", ok: true, bi: &debug.BuildInfo{GoVersion: "go1.26.8",
			Main: debug.Module{Version: "v0.0.0-20261130075820-2756ce500a38"},
			Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "2756ce500a38e645f9c32ff70ca35f89dc2b559d"},
				{Key: "vcs.time", Value: "2026-11-30T07:58:20Z"}, {Key: "vcs.modified", Value: "false"}}},
			want: buildVersion{Module: "v0.0.0-20261130075820-2756ce500a38", Commit: "2756ce500a38e645f9c32ff70ca35f89dc2b559d",
				Time: "2026-11-30T07:58:20Z", Go: "go1.26.8"}},
		{name: "tagged, modified", ok: true, bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}}},
			want: buildVersion{Module: "v1.2.3+dirty", Commit: "abc", Modified: true, Time: "2026-01-02T03:04:05Z", Go: "go1.26.8"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionOf(tt.bi, tt.ok); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	var out bytes.Buffer
	v := buildVersion{Module: "v1.2.3", Commit: "abc", Modified: true, Time: "2026-01-02T03:04:05Z", Go: "go1.26.8"}
	if err := v.write(&out); err != nil {
		t.Fatal(err)
	}
	want := "portico v1.2.3\ncommit:      abc (modified)\ncommit time: 2026-01-02T03:04:05Z\ngo:          go1.26.8\n"
	if out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
	if v.short() != "v1.2.3" || (buildVersion{Module: "(devel)"}).short() != "dev" {
		t.Errorf("short: %q", v.short())
	}
}

// TestVersionCommandWithoutVCSInfo: a test binary carries no VCS stamp;
// `portico version` still prints every line, with "(devel)" and "unknown",
// and the real Go version.
func TestVersionCommandWithoutVCSInfo(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), []string{arg}, envOf(nil), &out, &errOut); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		s := out.String()
		for _, want := range []string{"portico ", "commit:      ", "commit time: ", "go:          " + runtime.Version()} {
			if !strings.Contains(s, want) {
				t.Errorf("%s output lacks %q:\n%s", arg, want, s)
			}
		}
		if bi, ok := debug.ReadBuildInfo(); ok && !strings.Contains(s, "portico "+versionOf(bi, ok).Module+"\n") {
			t.Errorf("%s output:\n%s", arg, s)
		}
		if !strings.Contains(s, "(devel)") || !strings.Contains(s, "unknown") {
			t.Errorf("a test binary has no VCS stamp; want (devel) and unknown:\n%s", s)
		}
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"version", "extra"}, envOf(nil), &out, &errOut); exitCode(err) != exitUsage {
		t.Errorf("version extra: exit %d (%v), want %d", exitCode(err), err, exitUsage)
	}
}
