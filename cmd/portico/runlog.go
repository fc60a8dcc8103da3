package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
)

// startupAttrs are the key/values of `portico run`'s one startup line:
// where it listens and where its state is, so that one line of the log
// answers "where do I point my browser, my scraper, my etcdctl".
func startupAttrs(httpAddrs, httpsAddrs []string, metricsAddr string, etcdEndpoints []string, embedded bool, dataDir string) []any {
	orNone := func(s, none string) string {
		if s == "" {
			return none
		}
		return s
	}
	etcd := strings.Join(etcdEndpoints, ",")
	if embedded {
		etcd += " (embedded)"
	}
	return []any{
		"http", orNone(strings.Join(httpAddrs, ","), ":80"),
		"https", orNone(strings.Join(httpsAddrs, ","), "off"),
		"metrics", orNone(metricsAddr, "off"),
		"etcd", etcd,
		"data_dir", absPath(dataDir),
	}
}

// stopReason says why `portico run` ends: the signal it received (or the
// caller's cancellation), else the stage error that stopped it.
func stopReason(ctx context.Context, err error) string {
	if err != nil && !errors.Is(err, context.Canceled) {
		return err.Error()
	}
	if cause := context.Cause(ctx); cause != nil {
		return cause.Error()
	}
	return "all stages ended"
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
