package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Config says how a stage reaches etcd. The embedded server of `portico run`
// and an external cluster go through the same Connect.
type Config struct {
	// Endpoints are etcd client URLs, e.g. https://10.0.0.1:2379.
	Endpoints []string
	// CertFile and KeyFile are a TLS client certificate; CAFile verifies the
	// servers. Any of them turns TLS on.
	CertFile, KeyFile, CAFile string
	// Username and Password authenticate with etcd's auth.
	Username, Password string
	// AllowPlaintextPassword lets a password go to a plain http:// endpoint
	// (see CheckPlaintextPassword).
	AllowPlaintextPassword bool
	// DialTimeout bounds the first connection; 0 means 5s.
	DialTimeout time.Duration
}

// Connect opens a client. It does not wait for the cluster: the stages'
// loops retry, so a stage can start before etcd.
func Connect(cfg Config) (*clientv3.Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	if err := CheckPlaintextPassword(cfg); err != nil {
		return nil, err
	}
	var tlsCfg *tls.Config
	if cfg.CertFile != "" || cfg.KeyFile != "" || cfg.CAFile != "" {
		info := transport.TLSInfo{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, TrustedCAFile: cfg.CAFile}
		var err error
		if tlsCfg, err = info.ClientConfig(); err != nil {
			return nil, fmt.Errorf("etcd TLS: %w", err)
		}
	}
	dt := cfg.DialTimeout
	if dt == 0 {
		dt = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		TLS:         tlsCfg,
		Username:    cfg.Username,
		Password:    cfg.Password,
		DialTimeout: dt,
		Logger:      zap.NewNop(),
		// Keepalives let a watch notice a dead server instead of hanging.
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		// gRPC's default reconnect backoff grows to 120s; after an etcd
		// outage the stages must converge within seconds.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 2 * time.Second,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("etcd %v: %w", cfg.Endpoints, err)
	}
	return cli, nil
}

// CheckPlaintextPassword refuses a password bound for an endpoint that
// would carry it unencrypted: an http:// URL, or a bare host:port without
// TLS configured. unix:// sockets stay on the machine and are fine. The
// check is skipped when cfg.AllowPlaintextPassword is set.
func CheckPlaintextPassword(cfg Config) error {
	if cfg.Password == "" || cfg.AllowPlaintextPassword {
		return nil
	}
	tls := cfg.CertFile != "" || cfg.KeyFile != "" || cfg.CAFile != ""
	for _, ep := range cfg.Endpoints {
		scheme, _, hasScheme := strings.Cut(ep, "://")
		plain := false
		switch {
		case !hasScheme:
			plain = !tls
		case scheme == "http":
			plain = true
		}
		if plain {
			return fmt.Errorf("etcd endpoint %q is plain http: the password of etcd user %q would cross the network unencrypted; "+
				"use https:// endpoints (with --etcd-ca), or accept the risk with --etcd-allow-plaintext-password", ep, cfg.Username)
		}
	}
	return nil
}

// KV is the part of the etcd client that writes use.
type KV interface {
	Txn(ctx context.Context) clientv3.Txn
}
