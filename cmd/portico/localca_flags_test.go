package main

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestLocalCADomainsFlag(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		warn    bool
	}{
		{name: "none"},
		{name: "normalised", args: []string{"--local-ca-domains", "Corp.Example.,bücher.example"}},
		{name: "env form", env: map[string]string{"PORTICO_LOCAL_CA_DOMAINS": "corp.example"}},
		{name: "wildcard refused", args: []string{"--local-ca-domains", "*.corp.example"}, wantErr: `--local-ca-domains "*.corp.example"`},
		{name: "invalid refused", args: []string{"--local-ca-domains", "a_b.example"}, wantErr: `--local-ca-domains "a_b.example"`},
		{name: "issuer local without domains warns", args: []string{"--issuer", "local"}, warn: true},
		{name: "issuer local with domains", args: []string{"--issuer", "local", "--local-ca-domains", "corp.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCommand("certs", "test", io.Discard)
			so := addStore(c.fs)
			no := addNginx(c.fs)
			co := addCerts(c.fs)
			if err := c.parse(tc.args, envOf(tc.env)); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			_, err := newCerts(co, so, no, nil, nil, slog.New(slog.NewTextHandler(&logs, nil)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(logs.String(), "--local-ca-domains"); got != tc.warn {
				t.Errorf("warning logged = %v, want %v:\n%s", got, tc.warn, logs.String())
			}
		})
	}
}
