package store

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// EmbeddedConfig configures the single-node etcd that `portico run` starts
// when no endpoints are given.
type EmbeddedConfig struct {
	// Dir holds the etcd data (member/) and the endpoint file.
	Dir string
	// ClientAddr is the loopback address to serve clients on; "" picks a free
	// port on 127.0.0.1.
	ClientAddr string
}

// Embedded is a running embedded etcd.
type Embedded struct {
	etcd     *embed.Etcd
	endpoint string
	dir      string
}

// endpointFile is where a running `portico run` records its client URL, so
// that `portico status --data-dir DIR` finds it.
const endpointFile = "etcd-endpoint"

// EndpointFile is the path of the endpoint file under a data dir.
func EndpointFile(dataDir string) string { return filepath.Join(dataDir, endpointFile) }

// ReadEndpoint returns the client URL a running `portico run` recorded.
func ReadEndpoint(dataDir string) (string, error) {
	b, err := os.ReadFile(EndpointFile(dataDir))
	if err != nil {
		return "", fmt.Errorf("no running portico in %s: %w", dataDir, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// StartEmbedded starts etcd listening on loopback only, waits until it serves,
// and records its client URL in cfg.Dir.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedded etcd: no data dir")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	caddr := cfg.ClientAddr
	if caddr == "" {
		caddr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(caddr)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: client address %q: %w", caddr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("embedded etcd: client address %q is not loopback", caddr)
	}
	caddr, err = resolvePort(caddr)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	paddr, err := resolvePort("127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	curl := url.URL{Scheme: "http", Host: caddr}
	purl := url.URL{Scheme: "http", Host: paddr}

	ec := embed.NewConfig()
	ec.Name = "portico"
	ec.Dir = filepath.Join(cfg.Dir, "etcd")
	ec.ListenClientUrls = []url.URL{curl}
	ec.AdvertiseClientUrls = []url.URL{curl}
	ec.ListenPeerUrls = []url.URL{purl}
	ec.AdvertisePeerUrls = []url.URL{purl}
	ec.InitialCluster = ec.Name + "=" + purl.String()
	// etcd logs routine shutdown at error level; real failures reach the
	// caller through Err.
	ec.LogLevel = "fatal"
	// Keep a day of history at most: watchers re-list after compaction.
	ec.AutoCompactionMode = embed.CompactorModeRevision
	ec.AutoCompactionRetention = "10000"

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd in %s: %w", ec.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s: %w", ec.Dir, err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s: not ready after 60s", ec.Dir)
	}
	em := &Embedded{etcd: e, endpoint: curl.String(), dir: cfg.Dir}
	if err := writeFileAtomic(EndpointFile(cfg.Dir), []byte(em.endpoint+"\n"), 0o600); err != nil {
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	return em, nil
}

// Endpoint is the client URL.
func (e *Embedded) Endpoint() string { return e.endpoint }

// Err reports a fatal server error.
func (e *Embedded) Err() <-chan error { return e.etcd.Err() }

// Close stops the server and removes the endpoint file.
func (e *Embedded) Close() {
	os.Remove(EndpointFile(e.dir))
	e.etcd.Close()
}

// resolvePort replaces port 0 with a free port. etcd needs the concrete
// address up front to advertise it.
func resolvePort(addr string) (string, error) {
	if !strings.HasSuffix(addr, ":0") {
		return addr, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
