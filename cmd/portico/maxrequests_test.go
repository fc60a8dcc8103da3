package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/portico/portico/internal/nginx/render"
)

func TestMaxRequestsPerClientFlag(t *testing.T) {
	for _, c := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    int
		wantErr string
	}{
		{name: "default", want: render.DefaultMaxRequestsPerClient},
		{name: "flag", args: []string{"--max-requests-per-client", "50"}, want: 50},
		{name: "env", env: map[string]string{"PORTICO_MAX_REQUESTS_PER_CLIENT": "7"}, want: 7},
		{name: "off", args: []string{"--max-requests-per-client", "0"}, want: 0},
		{name: "nginx's most", args: []string{"--max-requests-per-client", "65535"}, want: 65535},
		{name: "negative", args: []string{"--max-requests-per-client", "-1"}, wantErr: "--max-requests-per-client: -1 requests"},
		{name: "over nginx's most", args: []string{"--max-requests-per-client", "65536"}, wantErr: "want 0 (no limit) to 65535"},
		{name: "not a number", env: map[string]string{"PORTICO_MAX_REQUESTS_PER_CLIENT": "many"}, wantErr: `PORTICO_MAX_REQUESTS_PER_CLIENT="many"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			cmd := newCommand("nginx", "test", &out)
			no := addNginx(cmd.fs)
			err := cmd.parse(c.args, envOf(c.env))
			n := 0
			if err == nil {
				n, err = no.maxRequestsPerClient()
			}
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || n != c.want {
				t.Fatalf("= %d, %v; want %d", n, err, c.want)
			}
		})
	}
}
