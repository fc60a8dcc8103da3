// Command etcdproc runs a single-node etcd server (go.etcd.io/etcd/server/v3/embed)
// in its own process, so that fault tests can kill -9 it and start it again
// on the same data dir and ports, as an operator's external etcd would be.
//
//	etcdproc --dir DIR --client-addr 127.0.0.1:PORT --peer-addr 127.0.0.1:PORT
//
// With --name and --initial-cluster (name=peerURL,...) it is one member of
// a cluster; with --tls-dir (ca.pem, member.pem, member-key.pem, as
// internal/testenv/etcdcluster writes them) it serves clients and peers over
// TLS and asks both for a certificate the CA signed.
//
// It prints "ready <client URL>" on stdout once the server serves, and runs
// until SIGTERM, SIGINT or SIGKILL. Loopback addresses only, or a private
// address of a network the test made (a test host's LAN: clients in other
// network namespaces reach the member there).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "etcdproc:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("etcdproc", flag.ContinueOnError)
	dir := fs.String("dir", "", "data dir (required)")
	clientAddr := fs.String("client-addr", "", "loopback (or the test's private network) host:port for clients (required)")
	peerAddr := fs.String("peer-addr", "", "loopback host:port for peers (required)")
	maxReq := fs.Uint("max-request-bytes", 0, "largest request etcd accepts (0: etcd's default, 1.5 MiB)")
	name := fs.String("name", "etcdproc", "member name")
	initial := fs.String("initial-cluster", "", "name=peerURL,... of every member (empty: this one alone)")
	token := fs.String("cluster-token", "etcdproc", "initial cluster token")
	tlsDir := fs.String("tls-dir", "", "dir with ca.pem, member.pem and member-key.pem: TLS to clients and peers, client certificates required")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *clientAddr == "" || *peerAddr == "" {
		return errors.New("--dir, --client-addr and --peer-addr are required")
	}
	for _, a := range []string{*clientAddr, *peerAddr} {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return fmt.Errorf("address %q: %w", a, err)
		}
		if ip := net.ParseIP(host); ip == nil || !(ip.IsLoopback() || ip.IsPrivate()) {
			return fmt.Errorf("address %q: not a loopback or private IP", a)
		}
	}
	scheme := "http"
	if *tlsDir != "" {
		scheme = "https"
	}
	curl := url.URL{Scheme: scheme, Host: *clientAddr}
	purl := url.URL{Scheme: scheme, Host: *peerAddr}
	cfg := embed.NewConfig()
	cfg.Name = *name
	cfg.Dir = *dir
	cfg.ListenClientUrls = []url.URL{curl}
	cfg.AdvertiseClientUrls = []url.URL{curl}
	cfg.ListenPeerUrls = []url.URL{purl}
	cfg.AdvertisePeerUrls = []url.URL{purl}
	cfg.InitialCluster = cfg.Name + "=" + purl.String()
	if *initial != "" {
		cfg.InitialCluster = *initial
	}
	cfg.InitialClusterToken = *token
	if *tlsDir != "" {
		info := transport.TLSInfo{
			CertFile:       filepath.Join(*tlsDir, "member.pem"),
			KeyFile:        filepath.Join(*tlsDir, "member-key.pem"),
			TrustedCAFile:  filepath.Join(*tlsDir, "ca.pem"),
			ClientCertAuth: true,
		}
		cfg.ClientTLSInfo, cfg.PeerTLSInfo = info, info
	}
	cfg.LogLevel = "error"
	if *maxReq > 0 {
		cfg.MaxRequestBytes = *maxReq
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("start etcd in %s: %w", *dir, err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		return fmt.Errorf("etcd in %s: %w", *dir, err)
	case <-time.After(60 * time.Second):
		return fmt.Errorf("etcd in %s: not ready after 60s", *dir)
	}
	fmt.Println("ready", curl.String())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
		return nil
	case err := <-e.Err():
		return fmt.Errorf("etcd in %s: %w", *dir, err)
	}
}
