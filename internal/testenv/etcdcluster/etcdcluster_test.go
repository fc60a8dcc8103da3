package etcdcluster_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/testenv/etcdcluster"
	"github.com/portico/portico/internal/testenv/porticotest"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "etcdcluster-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, err = etcdcluster.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestClusterSurvivesLeaderKill: three TLS members serve a write; the
// leader killed with SIGKILL, another member leads and the write is still
// read; the killed member comes back on its data dir and catches up. A
// client without a certificate is refused.
func TestClusterSurvivesLeaderKill(t *testing.T) {
	c := etcdcluster.Start(t, bin, 3, true)
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	old := c.Leader(t)
	c.Kill(old)
	killed := time.Now()
	porticotest.Eventually(t, 20*time.Second, "a write after the leader was killed", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := cli.Put(ctx, "k", "v2")
		return err
	})
	t.Logf("writes again %s after the leader was killed", time.Since(killed).Round(time.Millisecond))
	if now := c.Leader(t); now == old {
		t.Fatalf("member %d still leads after it was killed", old)
	}
	c.Restart(t, old)
	cfg, err := c.Config()
	if err != nil {
		t.Fatal(err)
	}
	one := cfg
	one.Endpoints = []string{c.Members[old].ClientURL}
	back, err := clientv3.New(one)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	porticotest.Eventually(t, 20*time.Second, "the restarted member caught up", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r, err := back.Get(ctx, "k", clientv3.WithSerializable())
		if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "v2" {
			return fmt.Errorf("%v %v", r, err)
		}
		return nil
	})

	cfg.TLS.Certificates = nil
	cfg.DialTimeout = 2 * time.Second
	if anon, err := clientv3.New(cfg); err == nil {
		defer anon.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if _, err := anon.Get(ctx, "k"); err == nil {
			t.Fatal("a client without a certificate read the store")
		}
	}
}
