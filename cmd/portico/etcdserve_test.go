package main

import (
	"strings"
	"testing"
)

func TestParseClientURLs(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    string
		wantErr string
	}{
		{in: "http://0.0.0.0:2379", want: "http://0.0.0.0:2379"},
		{in: "http://:2379", want: "http://0.0.0.0:2379"},
		{in: "http://127.0.0.1:12379/", want: "http://127.0.0.1:12379"},
		{in: "http://[::]:2379", want: "http://[::]:2379"},
		{in: "unix:///run/portico/etcd.sock", want: "unix:///run/portico/etcd.sock"},
		{in: "unix://run/etcd.sock", wantErr: "absolute path"},
		{in: "unix:///run/../etc/x.sock", wantErr: "absolute path"},
		{in: "unix:///", wantErr: "absolute path"},
		{in: "unix:///run/x.sock?a=b", wantErr: "only unix:///path"},
		{in: "https://0.0.0.0:2379", wantErr: "scheme must be unix or http"},
		{in: "tcp://0.0.0.0:2379", wantErr: "scheme must be unix or http"},
		{in: "0.0.0.0:2379", wantErr: "--listen-client"},
		{in: "http://etcd:2379", wantErr: "host must be an IP"},
		{in: "http://0.0.0.0", wantErr: "missing port"},
		{in: "http://0.0.0.0:", wantErr: "no port"},
		{in: "http://u:p@0.0.0.0:2379", wantErr: "only unix:///path or http://host:port"},
		{in: "http://0.0.0.0:2379/x", wantErr: "only unix:///path or http://host:port"},
		{in: "http://0.0.0.0:2379?a=b", wantErr: "only unix:///path or http://host:port"},
	} {
		got, err := parseClientURLs([]string{tc.in})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.in) {
				t.Errorf("%q: err %v, want one naming the value and containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if len(got) != 1 || got[0].String() != tc.want {
			t.Errorf("%q: got %v, want %s", tc.in, got, tc.want)
		}
	}
}
