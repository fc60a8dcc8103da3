// Package storetest starts a real embedded etcd for tests.
package storetest

import (
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/store"
)

// Etcd is an embedded etcd running for one test.
type Etcd struct {
	Server   *store.Embedded
	Client   *clientv3.Client
	Endpoint string
}

// Start starts an embedded etcd in a temporary dir (mode 0700, its client
// socket inside it) and connects a client.
// Both stop when the test ends.
func Start(t testing.TB) *Etcd {
	t.Helper()
	dir := t.TempDir()
	if _, err := store.PrepareDataDir(dir); err != nil {
		t.Fatal(err)
	}
	srv, err := store.StartEmbedded(store.EmbeddedConfig{Dir: dir})
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	t.Cleanup(srv.Close)
	cli, err := store.Connect(store.Config{Endpoints: []string{srv.Endpoint()}})
	if err != nil {
		t.Fatalf("connect etcd: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return &Etcd{Server: srv, Client: cli, Endpoint: srv.Endpoint()}
}
