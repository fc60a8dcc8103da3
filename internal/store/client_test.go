package store_test

import (
	"strings"
	"testing"

	"github.com/portico/portico/internal/store"
)

func TestCheckPlaintextPassword(t *testing.T) {
	tests := []struct {
		name    string
		cfg     store.Config
		wantErr string
	}{
		{name: "no password over http", cfg: store.Config{Endpoints: []string{"http://10.0.0.1:2379"}}},
		{name: "password over http", cfg: store.Config{Endpoints: []string{"https://a:2379", "http://10.0.0.1:2379"}, Username: "u", Password: "p"},
			wantErr: `etcd endpoint "http://10.0.0.1:2379" is plain http: the password of etcd user "u"`},
		{name: "password over http, allowed", cfg: store.Config{Endpoints: []string{"http://10.0.0.1:2379"}, Username: "u", Password: "p", AllowPlaintextPassword: true}},
		{name: "loopback http is still http", cfg: store.Config{Endpoints: []string{"http://127.0.0.1:2379"}, Username: "u", Password: "p"}, wantErr: "plain http"},
		{name: "bare host:port without TLS", cfg: store.Config{Endpoints: []string{"10.0.0.1:2379"}, Username: "u", Password: "p"}, wantErr: "--etcd-allow-plaintext-password"},
		{name: "bare host:port with TLS", cfg: store.Config{Endpoints: []string{"10.0.0.1:2379"}, CAFile: "/ca.pem", Username: "u", Password: "p"}},
		{name: "https", cfg: store.Config{Endpoints: []string{"https://10.0.0.1:2379"}, Username: "u", Password: "p"}},
		{name: "unix socket", cfg: store.Config{Endpoints: []string{"unix:///var/lib/portico/etcd.sock"}, Username: "u", Password: "p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := store.CheckPlaintextPassword(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if _, cerr := store.Connect(tt.cfg); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("Connect does not refuse: %v", cerr)
			}
		})
	}
}
