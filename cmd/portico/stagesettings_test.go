package main

import (
	"io"
	"strings"
	"testing"

	"github.com/portico/portico/internal/store"
)

// TestUseStageSettings: status takes the nginx stage's --network and
// --allowed-domains from the store unless given; a given flag (command
// line or environment) wins, with a note when it differs.
func TestUseStageSettings(t *testing.T) {
	st := store.NginxSettings{Instance: "edge", Network: "portico", AllowedDomains: []string{"example.com", "*.test"}}
	for _, tc := range []struct {
		name             string
		args             []string
		env              map[string]string
		network, allowed string
		note             string
	}{
		{name: "from the store", network: "portico", allowed: "example.com,*.test"},
		{name: "flag wins with a note", args: []string{"--network", "other"}, network: "other", allowed: "example.com,*.test",
			note: `--network "other" differs from the nginx stage edge's "portico"`},
		{name: "same flag, no note", args: []string{"--network", "portico"}, network: "portico", allowed: "example.com,*.test"},
		{name: "environment wins", env: map[string]string{"PORTICO_ALLOWED_DOMAINS": "a.example"}, network: "portico", allowed: "a.example",
			note: `--allowed-domains "a.example" differs`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCommand("status", "", io.Discard)
			network := c.fs.String("network", "", "")
			allowed := addAllowedDomains(c.fs)
			e := env{lookup: func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }}
			if err := c.parse(tc.args, e); err != nil {
				t.Fatal(err)
			}
			notes, err := c.useStageSettings(e, st)
			if err != nil {
				t.Fatal(err)
			}
			if *network != tc.network || allowed.String() != tc.allowed {
				t.Errorf("network %q allowed %q, want %q %q", *network, allowed.String(), tc.network, tc.allowed)
			}
			joined := strings.Join(notes, "\n")
			if (tc.note == "") != (joined == "") || !strings.Contains(joined, tc.note) {
				t.Errorf("notes %q, want %q", joined, tc.note)
			}
		})
	}
}
