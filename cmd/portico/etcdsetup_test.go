package main

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/store"
)

func TestPasswordPaths(t *testing.T) {
	users := []string{"portico-reporter-docker", "portico-nginx-edge", "root"}
	for _, tt := range []struct {
		name    string
		dir     string
		entries []string
		want    map[string]string
		err     string
	}{
		{name: "dir only", dir: "/pw", want: map[string]string{
			"portico-reporter-docker": "/pw/portico-reporter-docker", "portico-nginx-edge": "/pw/portico-nginx-edge", "root": "/pw/root"}},
		{name: "entries win over the dir", dir: "/pw", entries: []string{"portico-reporter-docker=/run/a/password", " root = /data/root/ "},
			want: map[string]string{"portico-reporter-docker": "/run/a/password", "portico-nginx-edge": "/pw/portico-nginx-edge", "root": "/data/root"}},
		{name: "entries alone", entries: []string{"portico-reporter-docker=/a", "portico-nginx-edge=/b", "root=/c"},
			want: map[string]string{"portico-reporter-docker": "/a", "portico-nginx-edge": "/b", "root": "/c"}},
		{name: "a user with no file", entries: []string{"portico-reporter-docker=/a", "root=/c"},
			err: "user portico-nginx-edge: no password file: give --passwords-dir or --password-file portico-nginx-edge=PATH"},
		{name: "a mistyped user", dir: "/pw", entries: []string{"portico-reporter-dokcer=/a"},
			err: "--password-file names user portico-reporter-dokcer, which this setup does not create"},
		{name: "no =", dir: "/pw", entries: []string{"root"}, err: `--password-file "root": give USER=PATH`},
		{name: "empty path", dir: "/pw", entries: []string{"root="}, err: `--password-file "root=": give USER=PATH`},
		{name: "relative path", dir: "/pw", entries: []string{"root=pw/root"}, err: `--password-file "root=pw/root": the path must be absolute`},
		{name: "twice", dir: "/pw", entries: []string{"root=/a", "root=/b"}, err: "user root given twice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ov, err := parsePasswordFiles(tt.entries)
			var got map[string]string
			if err == nil {
				got, err = passwordPaths(tt.dir, ov, users)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("paths = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEtcdSetupRefusesAPasswordFileForAnotherUser(t *testing.T) {
	var out strings.Builder
	err := run(t.Context(), []string{"etcd-setup", "--etcd-endpoints", "unix:///nonexistent/etcd.sock", "--reporter-host", "docker",
		"--passwords-dir", t.TempDir(), "--password-file", "portico-reporter-other=/x"}, envOf(nil), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "--password-file names user portico-reporter-other") {
		t.Errorf("err = %v", err)
	}
}

// --generate-passwords writes every missing file, root's included, before
// it connects: a dead endpoint still leaves the files, and a second run
// keeps them.
func TestEtcdSetupGeneratesMissingPasswords(t *testing.T) {
	dir := t.TempDir()
	own := filepath.Join(t.TempDir(), "reporter", "password")
	args := []string{"etcd-setup", "--etcd-endpoints", "unix://" + filepath.Join(t.TempDir(), "none.sock"), "--reporter-host", "docker",
		"--nginx-instance", "edge", "--passwords-dir", dir, "--password-file", "portico-reporter-docker=" + own, "--generate-passwords", "--enable-auth"}
	if err := os.WriteFile(filepath.Join(dir, "portico-certs"), []byte("chosen\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	read := func() map[string]string {
		m := map[string]string{}
		for _, p := range []string{own, filepath.Join(dir, "portico-nginx-edge"), filepath.Join(dir, "portico-certs"), filepath.Join(dir, "portico-reader"), filepath.Join(dir, "root")} {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("after etcd-setup --generate-passwords: %v", err)
			}
			m[p] = string(b)
		}
		return m
	}
	// The endpoint is dead: each run fails after generating, within the
	// context's deadline.
	dead := func(out *strings.Builder) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := run(ctx, args, envOf(nil), out, out); err == nil {
			t.Errorf("etcd-setup against no etcd succeeded")
		}
	}
	var out strings.Builder
	dead(&out)
	first := read()
	if first[filepath.Join(dir, "portico-certs")] != "chosen\n" {
		t.Errorf("an existing password file was replaced")
	}
	if n := strings.Count(out.String(), "generated the password of user"); n != 4 {
		t.Errorf("generated %d passwords, want 4 (reporter, nginx, reader, root):\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), "generated the password of user portico-reporter-docker in "+own) {
		t.Errorf("output does not name the reporter's own file:\n%s", out.String())
	}
	out.Reset()
	dead(&out)
	if !maps.Equal(read(), first) {
		t.Errorf("a second run changed the password files")
	}
	if strings.Contains(out.String(), "generated") {
		t.Errorf("a second run generated passwords:\n%s", out.String())
	}
}

func TestDataDirReader(t *testing.T) {
	dir := t.TempDir()
	if u, pw, err := dataDirReader(dir); u != "" || pw != "" || err != nil {
		t.Errorf("no auth dir: %q %q %v, want no user", u, pw, err)
	}
	if err := os.MkdirAll(store.AuthDir(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(store.AuthDir(dir), store.ReaderUser), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if u, pw, err := dataDirReader(dir); u != store.ReaderUser || pw != "s3cret" || err != nil {
		t.Errorf("with the reader's file: %q %q %v", u, pw, err)
	}
	if err := os.WriteFile(filepath.Join(store.AuthDir(dir), store.ReaderUser), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := dataDirReader(dir); err == nil || !strings.Contains(err.Error(), "portico-reader") {
		t.Errorf("empty file: %v, want an error naming the user", err)
	}
}
