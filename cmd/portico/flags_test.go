package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/go-acme/lego/v5/challenge"
)

func envOf(m map[string]string) env {
	return env{lookup: func(k string) (string, bool) { v, ok := m[k]; return v, ok }}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"etcd-endpoints": "PORTICO_ETCD_ENDPOINTS",
		"http-addr":      "PORTICO_HTTP_ADDR",
		"prefix":         "PORTICO_PREFIX",
	} {
		if got := envName(in); got != want {
			t.Errorf("envName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFlagsFromEnvironmentAndCommandLine(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		prefix    string
		endpoints string
		http      string
		wantErr   string
	}{
		{name: "defaults", prefix: "/portico", http: ":80"},
		{name: "env", env: map[string]string{"PORTICO_PREFIX": "/x", "PORTICO_ETCD_ENDPOINTS": "http://a:1,http://b:2", "PORTICO_HTTP_ADDR": "127.0.0.1:8080"},
			prefix: "/x", endpoints: "http://a:1,http://b:2", http: "127.0.0.1:8080"},
		{name: "flag wins over env", args: []string{"--prefix", "/flag", "--http-addr", ":81,:82"}, env: map[string]string{"PORTICO_PREFIX": "/env"},
			prefix: "/flag", http: ":81,:82"},
		{name: "repeated list flag appends", args: []string{"--etcd-endpoints", "http://a:1", "--etcd-endpoints", "http://b:2"},
			prefix: "/portico", endpoints: "http://a:1,http://b:2", http: ":80"},
		{name: "empty list turns it off", args: []string{"--http-addr", ""}, prefix: "/portico", http: ""},
		{name: "bad env value names the variable", env: map[string]string{"PORTICO_DEBOUNCE": "soon"}, wantErr: `PORTICO_DEBOUNCE="soon"`},
		{name: "stray argument", args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			c := newCommand("nginx", "test", &out)
			so := addStore(c.fs)
			no := addNginx(c.fs)
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
			if got := *so.prefix; got != tt.prefix {
				t.Errorf("prefix = %q, want %q", got, tt.prefix)
			}
			if got := so.endpoints.String(); got != tt.endpoints {
				t.Errorf("endpoints = %q, want %q", got, tt.endpoints)
			}
			if got := no.httpAddrs.String(); got != tt.http {
				t.Errorf("http-addr = %q, want %q", got, tt.http)
			}
		})
	}
}

func TestHelpNamesEveryFlagAndItsVariable(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"run", "--help"}, envOf(nil), &out, &out)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	for _, f := range []string{"--etcd-endpoints", "--prefix", "--data-dir", "--http-addr", "--https-addr", "--network", "--host",
		"--acme-directory", "--acme-staging", "--acme-email", "--acme-ca-roots", "--acme-key-type", "--dns-provider", "--acme-challenge",
		"--dns-resolvers", "--wildcard-domains", "--domains-file", "--domains-out", "--issuer", "PORTICO_ETCD_ENDPOINTS"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("run --help does not mention %s", f)
		}
	}
}

func TestParseProviders(t *testing.T) {
	build := func(code string) (challenge.Provider, error) {
		if code == "nope" {
			return nil, errors.New("unknown")
		}
		return nil, nil
	}
	got, err := parseProviders([]string{"cloudflare", "Example.ORG.=dnsupdate"}, build)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[""]; !ok {
		t.Error("bare provider is not the default")
	}
	if _, ok := got["example.org"]; !ok {
		t.Errorf("zone not normalised: %v", got)
	}
	for _, bad := range [][]string{{"nope"}, {"a.com="}, {"a.com=x", "a.com=y"}} {
		if _, err := parseProviders(bad, build); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
