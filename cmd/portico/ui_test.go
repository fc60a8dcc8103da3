package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The start-up rule holds for both commands before anything starts: a
// non-loopback --ui-addr without a token is a usage error naming the fix.
func TestUIAddrNeedsTokenOffLoopback(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(tokenFile, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"run, all interfaces", []string{"run", "--ui-addr", "0.0.0.0:8099"}, nil, "not loopback"},
		{"run, empty host", []string{"run", "--ui-addr", ":8099"}, nil, "not loopback"},
		{"ui, from the environment", []string{"ui"}, map[string]string{"PORTICO_UI_ADDR": "[::]:8099"}, "not loopback"},
		{"ui, empty address", []string{"ui", "--ui-addr", ""}, nil, "--ui-addr is empty"},
		{"ui, bad address", []string{"ui", "--ui-addr", "8099"}, nil, "missing port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			args := append(tc.args, "--data-dir", t.TempDir())
			err := run(context.Background(), args, env{lookup: mapLookup(tc.env)}, &out, &out)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if code := exitCode(err); code != exitUsage {
				t.Errorf("exit code %d, want %d", code, exitUsage)
			}
		})
	}
	// With a token (file or environment) the rule passes; the command
	// then fails later, on the missing etcd, not on the address.
	for _, e := range []map[string]string{{"PORTICO_UI_TOKEN": "t0ken"}, {"PORTICO_UI_TOKEN_FILE": tokenFile}} {
		var out bytes.Buffer
		err := run(context.Background(), []string{"ui", "--ui-addr", "0.0.0.0:0", "--data-dir", t.TempDir()}, env{lookup: mapLookup(e)}, &out, &out)
		if err == nil || strings.Contains(err.Error(), "loopback") || exitCode(err) == exitUsage {
			t.Errorf("with %v: %v", e, err)
		}
	}
}

func mapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestUITokenOnCommandLineWarns(t *testing.T) {
	c := newCommand("ui", "test", &bytes.Buffer{})
	uo := addUI(c.fs, defaultUIAddr, nil, nil)
	if err := c.parse([]string{"--ui-token", "abc"}, env{}); err != nil {
		t.Fatal(err)
	}
	if uo.token.Value() != "abc" || len(c.warnings) != 1 || c.warnings[0].flag != "--ui-token" {
		t.Errorf("token %q, warnings %v", uo.token.Value(), c.warnings)
	}
}
