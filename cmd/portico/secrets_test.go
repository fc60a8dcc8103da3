package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretFlags(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pw := file("pw", "s3cret pass\n")
	crlf := file("crlf", "hmac-key\r\n")
	empty := file("empty", "\n")
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		password string
		hmac     string
		warn     []string // flags the warnings must name
		wantErr  string
	}{
		{name: "none"},
		{name: "command line: accepted with a warning", args: []string{"--etcd-password", "p1", "--acme-eab-hmac", "h1"},
			password: "p1", hmac: "h1", warn: []string{"--acme-eab-hmac", "--etcd-password"}}, // flag order
		{name: "environment: no warning", env: map[string]string{"PORTICO_ETCD_PASSWORD": "p2", "PORTICO_ACME_EAB_HMAC": "h2"}, password: "p2", hmac: "h2"},
		{name: "file flag, trailing newline dropped, inner space kept", args: []string{"--etcd-password-file", pw, "--acme-eab-hmac-file", crlf},
			password: "s3cret pass", hmac: "hmac-key"},
		{name: "file from the environment", env: map[string]string{"PORTICO_ETCD_PASSWORD_FILE": pw}, password: "s3cret pass"},
		{name: "both forms on the command line", args: []string{"--etcd-password", "p", "--etcd-password-file", pw},
			wantErr: "--etcd-password and --etcd-password-file (or PORTICO_ETCD_PASSWORD and PORTICO_ETCD_PASSWORD_FILE) both given"},
		{name: "value in the environment, file on the command line", args: []string{"--acme-eab-hmac-file", crlf}, env: map[string]string{"PORTICO_ACME_EAB_HMAC": "h"},
			wantErr: "--acme-eab-hmac and --acme-eab-hmac-file"},
		{name: "missing file", args: []string{"--etcd-password-file", filepath.Join(dir, "nope")}, wantErr: "--etcd-password-file: open " + filepath.Join(dir, "nope")},
		{name: "empty file", args: []string{"--etcd-password-file", empty}, wantErr: "--etcd-password-file " + empty + ": empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			c := newCommand("certs", "test", &out)
			so := addStore(c.fs)
			co := addCerts(c.fs)
			err := c.parse(tt.args, envOf(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := so.password.Value(); got != tt.password {
				t.Errorf("etcd password = %q, want %q", got, tt.password)
			}
			if got := co.eabHMAC.Value(); got != tt.hmac {
				t.Errorf("eab hmac = %q, want %q", got, tt.hmac)
			}
			if len(c.warnings) != len(tt.warn) {
				t.Fatalf("warnings = %v, want ones naming %v", c.warnings, tt.warn)
			}
			for i, w := range c.warnings {
				if w.flag != tt.warn[i] || !strings.Contains(w.msg, tt.warn[i]+"-file") || !strings.Contains(w.msg, envName(tt.warn[i][2:])) {
					t.Errorf("warning %+v: want it to name %s, its -file form and its variable", w, tt.warn[i])
				}
			}
		})
	}
}

// The help never shows a secret, even one given as a default through the
// environment, and names both forms.
func TestSecretHelp(t *testing.T) {
	var out bytes.Buffer
	c := newCommand("certs", "test", &out)
	addStore(c.fs)
	addCerts(c.fs)
	if err := c.parse(nil, envOf(map[string]string{"PORTICO_ETCD_PASSWORD": "hunter2"})); err != nil {
		t.Fatal(err)
	}
	c.usage(&out)
	for _, want := range []string{"--etcd-password-file", "PORTICO_ETCD_PASSWORD_FILE", "--acme-eab-hmac-file", "--etcd-allow-plaintext-password"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help does not mention %s", want)
		}
	}
	if strings.Contains(out.String(), "hunter2") {
		t.Error("help prints the secret")
	}
}

// A stage given a password on the command line logs the warning, and
// refuses to send it over plain http.
func TestCommandLinePasswordWarnsAndPlainHTTPIsRefused(t *testing.T) {
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"reporter", "--etcd-endpoints", "http://127.0.0.1:1", "--etcd-user", "u", "--etcd-password", "p", "--host", "h"},
		envOf(nil), &stderr, &stderr)
	if err == nil || !strings.Contains(err.Error(), `etcd endpoint "http://127.0.0.1:1" is plain http`) ||
		!strings.Contains(err.Error(), "--etcd-allow-plaintext-password") {
		t.Fatalf("err = %v, want the plain-http refusal naming the endpoint and the flag", err)
	}
	log := stderr.String()
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, "flag=--etcd-password") || !strings.Contains(log, "--etcd-password-file") {
		t.Errorf("no warning about the command-line password in the log:\n%s", log)
	}
	if strings.Contains(log, "=p ") || strings.Contains(log, `"p"`) {
		t.Errorf("the log shows the password:\n%s", log)
	}
}
