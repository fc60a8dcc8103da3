package main

import (
	"flag"
	"os"
	"strings"
	"testing"
)

func TestWorkerTempDir(t *testing.T) {
	no := addNginx(flag.NewFlagSet("t", flag.ContinueOnError))
	if d, _, err := workerTempDir(no, 1000); err != nil || d != "" {
		t.Errorf("not root: %q %v, want the default (\"\")", d, err)
	}
	d, cleanup, err := workerTempDir(no, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(d)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o711 || !strings.HasPrefix(d, os.TempDir()) {
		t.Errorf("root: %s: %v %v, want a 0711 dir under %s", d, fi, err, os.TempDir())
	}
	cleanup()
	if _, err := os.Stat(d); !os.IsNotExist(err) {
		t.Errorf("cleanup left %s: %v", d, err)
	}
	*no.pidFile = "/run/nginx.pid"
	if d, _, err := workerTempDir(no, 0); err != nil || d != "" {
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
