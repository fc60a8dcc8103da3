package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestStartupAttrs(t *testing.T) {
	for _, tt := range []struct {
		name        string
		http, https []string
		metrics     string
		etcd        []string
		embedded    bool
		want        string
	}{
		{"defaults", nil, nil, "", []string{"unix:///d/etcd.sock"}, true,
			"[http :80 https off metrics off etcd unix:///d/etcd.sock (embedded) data_dir /d]"},
		{"everything", []string{":80", "[::]:80"}, []string{":443"}, "127.0.0.1:9090", []string{"https://a:2379", "https://b:2379"}, false,
			"[http :80,[::]:80 https :443 metrics 127.0.0.1:9090 etcd https://a:2379,https://b:2379 data_dir /d]"},
	} {
		if got := fmt.Sprint(startupAttrs(tt.http, tt.https, tt.metrics, tt.etcd, tt.embedded, "/d")); got != tt.want {
			t.Errorf("%s: got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

func TestStopReason(t *testing.T) {
	canceled, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("terminated signal received"))
	for _, tt := range []struct {
		name string
		ctx  context.Context
		err  error
		want string
	}{
		{"signal", canceled, nil, "terminated signal received"},
		{"signal, stages canceled", canceled, context.Canceled, "terminated signal received"},
		{"a stage failed", context.Background(), errors.New("stage nginx: cannot listen"), "stage nginx: cannot listen"},
		{"all ended", context.Background(), nil, "all stages ended"},
	} {
		if got := stopReason(tt.ctx, tt.err); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
