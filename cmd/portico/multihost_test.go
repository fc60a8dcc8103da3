package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestMultiHostFlags: --advertise-addr is checked at start (an IP address
// other hosts can reach, or nothing), read from its variable too;
// --host-expiry of 0 or less means never.
func TestMultiHostFlags(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		env     map[string]string
		want    string
		wantErr string
	}{
		{want: "invalid IP"}, // none: the zero address
		{args: []string{"--advertise-addr", "10.0.0.2"}, want: "10.0.0.2"},
		{env: map[string]string{"PORTICO_ADVERTISE_ADDR": "2001:db8::2"}, want: "2001:db8::2"},
		{args: []string{"--advertise-addr", "docker-1.example.com"}, wantErr: `--advertise-addr "docker-1.example.com"`},
		{args: []string{"--advertise-addr", "0.0.0.0"}, wantErr: "unspecified"},
		{args: []string{"--advertise-addr", "fe80::1%eth0"}, wantErr: "zone"},
	} {
		c := newCommand("reporter", "test", &bytes.Buffer{})
		ro := addReporter(c.fs, env{})
		if err := c.parse(tt.args, envOf(tt.env)); err != nil {
			t.Fatal(err)
		}
		a, err := ro.advertiseAddr()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v: err %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || a.String() != tt.want {
			t.Errorf("%v %v: %v %v, want %s", tt.args, tt.env, a, err, tt.want)
		}
	}
	for in, want := range map[time.Duration]time.Duration{0: -1, -time.Hour: -1, time.Hour: time.Hour} {
		if got := hostExpiry(in); got != want {
			t.Errorf("hostExpiry(%s) = %s, want %s", in, got, want)
		}
	}
}
