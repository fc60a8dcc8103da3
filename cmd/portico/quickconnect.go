package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/portico/portico/internal/store"
)

// statusProbe bounds how long `portico status` waits for the store's first
// answer: a person at a terminal learns that etcd is down within it, not
// after the 10 s the reads may take once it answers.
const statusProbe = 1500 * time.Millisecond

// connectQuick opens a client for a one-shot command and asks the store one
// cheap question (a count under the prefix) within probe, so that a dead or
// absent etcd fails fast with an error naming the endpoints. The dial (and,
// with a user, the authentication) is bounded by probe too.
func connectQuick(ctx context.Context, so *storeOpts, dataDir string, probe time.Duration) (*clientv3.Client, error) {
	eps, err := endpoints(so, dataDir)
	if err != nil {
		return nil, err
	}
	cfg := so.config(eps)
	cfg.DialTimeout = probe
	if len(so.endpoints.vals) == 0 && cfg.Username == "" && cfg.Password == "" {
		if cfg.Username, cfg.Password, err = dataDirReader(dataDir); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	cli, err := store.Connect(cfg)
	if err != nil {
		return nil, unreachable(eps, time.Since(start), err)
	}
	pctx, cancel := context.WithTimeout(ctx, max(0, probe-time.Since(start)))
	defer cancel()
	if _, err := cli.Get(pctx, so.keys().Prefix()+"/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		cli.Close()
		return nil, unreachable(eps, time.Since(start), err)
	}
	return cli, nil
}

// unreachable names the endpoints: "did not answer" when the probe ran out
// of time or found no server, the store's own answer otherwise (a refused
// login, a missing permission).
func unreachable(eps []string, took time.Duration, err error) error {
	where := strings.Join(eps, ",")
	if errors.Is(err, context.DeadlineExceeded) || grpcstatus.Code(err) == codes.DeadlineExceeded || grpcstatus.Code(err) == codes.Unavailable {
		return fmt.Errorf("etcd at %s did not answer within %s (is `portico run` or etcd running there?): %w",
			where, took.Round(100*time.Millisecond), err)
	}
	return fmt.Errorf("etcd at %s: %w", where, err)
}

// dataDirReader is the read-only user of a store with auth reached through
// its data dir (the compose stack's etcd service): its password is in
// store.AuthDir. No file there: no user (a store without auth).
func dataDirReader(dataDir string) (user, password string, err error) {
	path := filepath.Join(store.AuthDir(dataDir), store.ReaderUser)
	pw, err := readPasswordFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("password of etcd user %s: %w", store.ReaderUser, err)
	}
	return store.ReaderUser, pw, nil
}
