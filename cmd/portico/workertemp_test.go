package main

import (
	"flag"
	"os"
	"strings"
	"testing"
)

func TestWorkerTempDir(t *testing.T) {
	no := addNginx(flag.NewFlagSet("t", flag.ContinueOnError))
	data := t.TempDir()
	if d, err := workerTempDir(no, 1000, data); err != nil || d != "" {
		t.Errorf("not root: %q %v, want the default (\"\")", d, err)
	}
	if os.Geteuid() != 0 {
		t.Fatal("the rest needs root (a root-owned dir); CI runs as root")
	}
	d, err := workerTempDir(no, 0, data)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	fi, err := os.Stat(d)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o711 || !strings.HasPrefix(d, os.TempDir()) {
		t.Errorf("root: %s: %v %v, want a 0711 dir under %s", d, fi, err, os.TempDir())
	}
	// The next run on the same data dir uses the same dir: nginx.conf,
	// which names it, stays as it is.
	if again, err := workerTempDir(no, 0, data); err != nil || again != d {
		t.Errorf("second run: %q %v, want %q again", again, err, d)
	}
	// A recorded dir that is not ours any more (a symlink, another mode)
	// is not reused.
	os.Chmod(d, 0o777)
	other, err := workerTempDir(no, 0, data)
	if err != nil || other == d {
		t.Errorf("after the dir was opened up: %q %v, want a fresh dir", other, err)
	}
	t.Cleanup(func() { os.RemoveAll(other) })
	os.RemoveAll(other)
	if err := os.Symlink(t.TempDir(), other); err != nil {
		t.Fatal(err)
	}
	if fresh, err := workerTempDir(no, 0, data); err != nil || fresh == other {
		t.Errorf("recorded path is a symlink: %q %v, want a fresh dir", fresh, err)
	} else {
		os.RemoveAll(fresh)
	}
	*no.pidFile = "/run/nginx.pid"
	if d, err := workerTempDir(no, 0, data); err != nil || d != "" {
		t.Errorf("external nginx: %q %v, want none", d, err)
	}
}

func TestEtcdSetupRefusesBadInvocations(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--passwords-dir", dir, "--reporter-host", "h"}, "--etcd-endpoints is required"},
		{[]string{"--etcd-endpoints", "https://127.0.0.1:1", "--reporter-host", "h"}, "--passwords-dir is required"},
		{[]string{"--etcd-endpoints", "https://127.0.0.1:1", "--passwords-dir", dir, "--reporter-host", "a/b"}, `--reporter-host "a/b"`},
		{[]string{"--etcd-endpoints", "https://127.0.0.1:1", "--passwords-dir", dir, "--reporter-host", "h"}, "password of user portico-reporter-h: open " + dir + "/portico-reporter-h"},
		{[]string{"--etcd-endpoints", "https://127.0.0.1:1", "--passwords-dir", dir, "--certs=false", "--reader=false"}, "nothing to set up"},
	} {
		var out strings.Builder
		err := run(t.Context(), append([]string{"etcd-setup"}, tt.args...), envOf(nil), &out, &out)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want %q", tt.args, err, tt.want)
		}
	}
}
