package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestAllowedDomainsFlag(t *testing.T) {
	var out bytes.Buffer
	c := newCommand("nginx", "test", &out)
	no := addNginx(c.fs)
	if err := c.parse(nil, envOf(map[string]string{"PORTICO_ALLOWED_DOMAINS": "node1=*.one.test,shared.test"})); err != nil {
		t.Fatal(err)
	}
	opts, err := routingOptions(*no.network, no.allowed)
	if err != nil {
		t.Fatal(err)
	}
	if !opts.Allowed.Enabled() || !opts.Allowed.Allows("node1", "a.one.test") || opts.Allowed.Allows("node2", "a.one.test") ||
		!opts.Allowed.Allows("node2", "shared.test") {
		t.Errorf("allow-list from PORTICO_ALLOWED_DOMAINS not applied: %+v", opts.Allowed)
	}
	if _, err := routingOptions("", &listFlag{vals: []string{"ok.test", "node1=a_b.test"}}); err == nil ||
		!strings.Contains(err.Error(), "--allowed-domains") || !strings.Contains(err.Error(), "a_b.test") {
		t.Errorf("bad entry: %v", err)
	}
	if opts, err := routingOptions("proxy", nil); err != nil || opts.Allowed.Enabled() || opts.Network != "proxy" {
		t.Errorf("no flag: %+v, %v", opts, err)
	}
}
