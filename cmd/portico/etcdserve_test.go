package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico/portico/internal/store"
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

// `portico etcd` serves the data dir's socket and the shared one, tightens
// the shared socket's dir, refuses a second instance on the data dir, and
// stops on cancel.
func TestCmdEtcdServesTheSharedSocket(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	shared := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := "unix://" + filepath.Join(shared, "etcd.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"etcd", "--data-dir", dataDir, "--listen-client", sock}, env{}, io.Discard, &log)
	}()
	cli, err := store.Connect(store.Config{Endpoints: []string{sock}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		_, err := cli.Put(pctx, "/k", "v")
		pcancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no store on %s: %v\n%s", sock, err, log.String())
		}
		select {
		case err := <-done:
			t.Fatalf("portico etcd ended: %v\n%s", err, log.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if fi, err := os.Stat(shared); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("shared socket dir %s: %v %v, want 0700", shared, fi, err)
	}
	if !strings.Contains(log.String(), "socket dir was open to other users") {
		t.Errorf("no warning about the loose socket dir in:\n%s", log.String())
	}
	err = run(ctx, []string{"etcd", "--data-dir", dataDir, "--listen-client", sock}, env{}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "in use by pid") {
		t.Errorf("second portico etcd on %s: %v, want in use", dataDir, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("portico etcd after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("portico etcd did not stop after cancel")
	}
	if !strings.Contains(log.String(), "portico etcd stopped") {
		t.Errorf("no stop line in:\n%s", log.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
