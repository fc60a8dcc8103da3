package store

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/storage/wal"

	"github.com/portico/portico/internal/atomicfile"
)

// EmbeddedConfig configures the single-node etcd that `portico run` starts
// when no endpoints are given.
type EmbeddedConfig struct {
	// Dir is Portico's data dir. It must exist with mode 0700 (PrepareDataDir
	// makes it so): the store is reachable only through a unix socket in it,
	// so whoever can enter Dir can read and write the store, and nobody else.
	// etcd keeps its data in Dir/etcd.
	Dir string
	// ClientURLs are extra client listeners beside the data dir's socket,
	// for `portico etcd` (the compose stack): unix:// sockets in a dir of
	// mode 0700 shared with the stages (made 0600 like the main one), or
	// http:// addresses (no auth, no TLS). Empty for `portico run`: the
	// data dir's socket is the only door.
	ClientURLs []url.URL
}

// Embedded is a running embedded etcd.
type Embedded struct {
	etcd     *embed.Etcd
	endpoint string
	dir      string
}

const (
	// endpointFile is where a running `portico run` records its client URL,
	// so that `portico status --data-dir DIR` finds it.
	endpointFile = "etcd-endpoint"
	// socketFile is the embedded etcd's client socket in the data dir.
	socketFile = "etcd.sock"
	// maxSocketPath is the longest path a unix socket can have on Linux:
	// sun_path is 108 bytes including the terminating NUL.
	maxSocketPath = 107
	// embeddedCatchUpEntries is how many applied raft entries the embedded
	// etcd keeps in memory (etcd's SnapshotCatchUpEntries; 0 would mean
	// etcd's default, 5,000).
	embeddedCatchUpEntries = 10
	// embeddedSnapshotCount is how many raft entries the embedded etcd
	// applies between two snapshots to disk (etcd's default: 10,000).
	embeddedSnapshotCount = 1000
	// DataDirMode is the only mode the data dir may have.
	DataDirMode fs.FileMode = 0o700
)

// ReaderUser is the read-only user `portico etcd-setup` creates (with the
// default --role-base).
const ReaderUser = "portico-reader"

// AuthDir is where a store with auth keeps, in its data dir, the password
// files of root and of ReaderUser (the compose stack's etcd-setup puts
// them there): `portico status --data-dir` and `explain` read as
// ReaderUser when <AuthDir>/portico-reader exists. Whoever reads the data
// dir reads etcd's database anyway, so they give nobody more.
func AuthDir(dataDir string) string { return filepath.Join(dataDir, "etcd-auth") }

// EndpointFile is the path of the endpoint file under a data dir.
func EndpointFile(dataDir string) string { return filepath.Join(dataDir, endpointFile) }

// SocketPath is the embedded etcd's client socket under a data dir.
func SocketPath(dataDir string) string { return filepath.Join(dataDir, socketFile) }

// ReadEndpoint returns the client URL a running `portico run` recorded.
// While the embedded etcd is still starting (or restarting) the file may be
// missing; the socket it will serve on is then the answer, since its path is
// fixed by the data dir.
func ReadEndpoint(dataDir string) (string, error) {
	b, err := os.ReadFile(EndpointFile(dataDir))
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if _, serr := os.Stat(SocketPath(dataDir)); serr == nil {
		if ep, eerr := EmbeddedEndpoint(dataDir); eerr == nil {
			return ep, nil
		}
	}
	return "", fmt.Errorf("no running portico in %s: %w", dataDir, err)
}

// PrepareDataDir creates dir with mode 0700, or tightens an existing dir of
// the current user to 0700 (earlier versions created it 0755). It returns
// the mode it found when it had to tighten it, so that the caller can log
// it. A dir owned by another user, or a path that is not a directory, is an
// error: Portico does not take over someone else's files.
func PrepareDataDir(dir string) (loosened fs.FileMode, err error) {
	if dir == "" {
		return 0, errors.New("data dir: empty path")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return 0, fmt.Errorf("data dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, DataDirMode); err != nil {
		return 0, fmt.Errorf("data dir %s: %w", abs, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return 0, fmt.Errorf("data dir %s: %w", abs, err)
	}
	if !fi.IsDir() {
		return 0, fmt.Errorf("data dir %s: not a directory", abs)
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Getuid() {
		return 0, fmt.Errorf("data dir %s: owned by uid %d, not by this user (uid %d)", abs, uid, os.Getuid())
	}
	mode := fi.Mode().Perm()
	if mode == DataDirMode {
		return 0, nil
	}
	if err := os.Chmod(abs, DataDirMode); err != nil {
		return 0, fmt.Errorf("data dir %s: tighten mode %04o to %04o: %w", abs, mode, DataDirMode, err)
	}
	return mode, nil
}

// checkPrivateDir verifies that dir grants nothing to group or others.
func checkPrivateDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", dir)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("%s has mode %04o: the store would be reachable by other users; it must be %04o", dir, m, DataDirMode)
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Getuid() {
		return fmt.Errorf("%s is owned by uid %d, not by this user (uid %d)", dir, uid, os.Getuid())
	}
	return nil
}

// socketURL is the unix:// client URL of the socket in dir, or an error
// when the path does not fit a sockaddr_un.
func socketURL(dir string) (url.URL, error) {
	p := SocketPath(dir)
	if len(p) > maxSocketPath {
		return url.URL{}, fmt.Errorf("socket path %s is %d bytes; a unix socket path may have at most %d: use a shorter --data-dir", p, len(p), maxSocketPath)
	}
	return url.URL{Scheme: "unix", Path: p}, nil
}

// EmbeddedEndpoint is the client URL the embedded etcd of dataDir serves on
// (unix:///<abs data dir>/etcd.sock), known before it starts.
func EmbeddedEndpoint(dataDir string) (string, error) {
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return "", fmt.Errorf("embedded etcd: data dir %s: %w", dataDir, err)
	}
	u, err := socketURL(dir)
	if err != nil {
		return "", fmt.Errorf("embedded etcd: %w", err)
	}
	return u.String(), nil
}

// StartEmbedded starts etcd serving clients on a unix socket in cfg.Dir and
// nothing else (no TCP listener, no peer listener), waits until it serves,
// and records its client URL in cfg.Dir.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedded etcd: no data dir")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: data dir %s: %w", cfg.Dir, err)
	}
	if err := checkPrivateDir(dir); err != nil {
		return nil, fmt.Errorf("embedded etcd: data dir %w", err)
	}
	curl, err := socketURL(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	// etcd unlinks whatever is at the socket path before it binds: a
	// second `portico run` on this dir would steal the first one's socket.
	if c, err := net.DialTimeout("unix", curl.Path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("embedded etcd: %s is in use: another portico already serves this data dir", curl.Path)
	}

	for _, u := range cfg.ClientURLs {
		if err := checkExtraSocket(u); err != nil {
			return nil, fmt.Errorf("embedded etcd: %w", err)
		}
	}

	ec := embed.NewConfig()
	ec.Name = "portico"
	ec.Dir = filepath.Join(dir, "etcd")
	ec.ListenClientUrls = append([]url.URL{curl}, cfg.ClientURLs...)
	ec.AdvertiseClientUrls = []url.URL{curl}
	// A single member never talks to peers, so it listens for none: the
	// advertised peer URL only names the member in its cluster and is
	// never bound (a TCP peer port would let any local user in).
	purl := url.URL{Scheme: "unix", Path: filepath.Join(dir, "etcd-peer.sock")}
	ec.ListenPeerUrls = nil
	ec.AdvertisePeerUrls = []url.URL{purl}
	ec.InitialCluster = ec.Name + "=" + purl.String()
	// etcd logs routine shutdown at error level; real failures reach the
	// caller through Err.
	ec.LogLevel = "fatal"
	// Keep a day of history at most: watchers re-list after compaction.
	ec.AutoCompactionMode = embed.CompactorModeRevision
	ec.AutoCompactionRetention = "10000"
	// Memory (docs/store.md, "Embedded etcd memory"). A single member has
	// no follower to catch up, so the raft log it keeps in memory after
	// each in-memory snapshot (every 100 entries) can be short: etcd's
	// default keeps the last 5,000 entries, each a whole request (a
	// 100-record transaction is 60 KB), about 5 MB at 10,000 routes. The
	// WAL on disk still holds every entry since the last disk snapshot,
	// fsynced before a write is acknowledged: durability is unchanged.
	ec.SnapshotCatchUpEntries = embeddedCatchUpEntries
	// A restart loads the WAL entries since the last disk snapshot into
	// that same in-memory log; snapshot to disk every 1,000 entries
	// instead of 10,000 so a restart holds at most that many.
	ec.SnapshotCount = embeddedSnapshotCount
	// Nothing speaks etcd's JSON gateway to Portico's store: every client
	// (the stages, etcdctl) uses gRPC. The gateway costs a gRPC client
	// connection from etcd to itself per listener.
	ec.EnableGRPCGateway = false

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
	// The dir already keeps everyone else out; the socket's own mode does
	// too, whatever the umask was.
	for _, u := range append([]url.URL{curl}, cfg.ClientURLs...) {
		if u.Scheme != "unix" {
			continue
		}
		if err := os.Chmod(u.Path, 0o600); err != nil {
			e.Close()
			return nil, fmt.Errorf("embedded etcd: socket %s: %w", u.Path, err)
		}
	}
	em := &Embedded{etcd: e, endpoint: curl.String(), dir: dir}
	if err := atomicfile.Write(EndpointFile(dir), []byte(em.endpoint+"\n"), 0o600); err != nil {
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	return em, nil
}

// checkExtraSocket checks an extra unix:// client URL like the data dir's
// own socket: an absolute path that fits sun_path, in a dir that grants
// nothing to group or others, and not served by another process.
func checkExtraSocket(u url.URL) error {
	if u.Scheme != "unix" {
		return nil
	}
	if !filepath.IsAbs(u.Path) || filepath.Clean(u.Path) != u.Path {
		return fmt.Errorf("socket %q: not a clean absolute path", u.Path)
	}
	if len(u.Path) > maxSocketPath {
		return fmt.Errorf("socket path %s is %d bytes; a unix socket path may have at most %d", u.Path, len(u.Path), maxSocketPath)
	}
	if err := checkPrivateDir(filepath.Dir(u.Path)); err != nil {
		return fmt.Errorf("socket %s: dir %w", u.Path, err)
	}
	if c, err := net.DialTimeout("unix", u.Path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s is in use: another etcd already serves it", u.Path)
	}
	return nil
}

// Endpoint is the client URL (unix:///<data dir>/etcd.sock).
func (e *Embedded) Endpoint() string { return e.endpoint }

// Err reports a fatal server error.
func (e *Embedded) Err() <-chan error { return e.etcd.Err() }

// Close stops the server and removes the endpoint file.
func (e *Embedded) Close() {
	os.Remove(EndpointFile(e.dir))
	e.etcd.Close()
}

// SetWALSegmentSize sets the size of etcd's WAL segments (see
// WALSegmentSize). etcd keeps it in a package variable: call it only in a
// process that runs a single embedded etcd and nothing else that starts
// one, before StartEmbedded (portico's etcd child process).
func SetWALSegmentSize(n int64) { wal.SegmentSizeBytes = n }
