package store_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
)

// tcpListenInodes returns the socket inodes of every TCP socket in LISTEN
// state on the machine (IPv4 and IPv6).
func tcpListenInodes(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 9 && fields[3] == "0A" { // TCP_LISTEN
				out[fields[9]] = true
			}
		}
		fh.Close()
	}
	return out
}

// ownListeners returns the inodes of this process's listening TCP sockets.
func ownListeners(t *testing.T) map[string]bool {
	t.Helper()
	listen := tcpListenInodes(t)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	own := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil {
			continue
		}
		if ino, ok := strings.CutPrefix(link, "socket:["); ok {
			ino = strings.TrimSuffix(ino, "]")
			if listen[ino] {
				own[ino] = true
			}
		}
	}
	return own
}

func TestEmbeddedServesOnlyAPrivateUnixSocket(t *testing.T) {
	before := ownListeners(t)
	e := storetest.Start(t)
	if !strings.HasPrefix(e.Endpoint, "unix:///") {
		t.Fatalf("endpoint %q is not a unix socket", e.Endpoint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.Client.Put(ctx, "/k", "v"); err != nil {
		t.Fatalf("client over the socket: %v", err)
	}
	for ino := range ownListeners(t) {
		if !before[ino] {
			t.Errorf("embedded etcd opened a TCP listener (socket inode %s)", ino)
		}
	}
	sock := strings.TrimPrefix(e.Endpoint, "unix://")
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket %s: mode %v, want a socket with 0600", sock, fi.Mode())
	}
	dir := filepath.Dir(sock)
	ep, err := store.ReadEndpoint(dir)
	if err != nil || ep != e.Endpoint {
		t.Errorf("ReadEndpoint = %q, %v; want %q", ep, err, e.Endpoint)
	}
}

func TestStartEmbeddedRefusesAnOpenDataDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := store.StartEmbedded(store.EmbeddedConfig{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "0755") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("err = %v, want one naming %s and its mode 0755", err, dir)
	}
}

func TestStartEmbeddedRefusesATooLongSocketPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := store.StartEmbedded(store.EmbeddedConfig{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "at most 107") || !strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("err = %v, want the socket path limit and a hint", err)
	}
}

func TestPrepareDataDir(t *testing.T) {
	base := t.TempDir()
	fresh := filepath.Join(base, "a", "b")
	if old, err := store.PrepareDataDir(fresh); err != nil || old != 0 {
		t.Fatalf("fresh: old=%v err=%v", old, err)
	}
	if fi, _ := os.Stat(fresh); fi.Mode().Perm() != 0o700 {
		t.Errorf("fresh dir mode %v, want 0700", fi.Mode().Perm())
	}
	loose := filepath.Join(base, "loose")
	if err := os.Mkdir(loose, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(loose, 0o755)
	old, err := store.PrepareDataDir(loose)
	if err != nil || old != 0o755 {
		t.Fatalf("loose: old=%v err=%v, want 0755 reported", old, err)
	}
	if fi, _ := os.Stat(loose); fi.Mode().Perm() != 0o700 {
		t.Errorf("loose dir not tightened: %v", fi.Mode().Perm())
	}
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := store.PrepareDataDir(file); err == nil {
		t.Error("a regular file was accepted as data dir")
	}
	if os.Getuid() == 0 {
		other := filepath.Join(base, "other")
		os.Mkdir(other, 0o700)
		if err := os.Chown(other, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := store.PrepareDataDir(other); err == nil || !strings.Contains(err.Error(), "uid 65534") {
			t.Errorf("someone else's dir: err = %v", err)
		}
	}
}

func TestEmbeddedRestartsOnItsDataDir(t *testing.T) {
	dir := t.TempDir()
	if _, err := store.PrepareDataDir(dir); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"", "kept"} {
		srv, err := store.StartEmbedded(store.EmbeddedConfig{Dir: dir})
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		cli, err := store.Connect(store.Config{Endpoints: []string{srv.Endpoint()}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := cli.Get(ctx, "/k")
		if err == nil && want != "" && (len(resp.Kvs) == 0 || string(resp.Kvs[0].Value) != want) {
			t.Errorf("start %d: /k = %v, want %q", i, resp.Kvs, want)
		}
		if err == nil {
			_, err = cli.Put(ctx, "/k", "kept")
		}
		cancel()
		cli.Close()
		srv.Close()
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
	}
}

func TestSecondEmbeddedOnADataDirLeavesTheFirstAlone(t *testing.T) {
	e := storetest.Start(t)
	dir := filepath.Dir(strings.TrimPrefix(e.Endpoint, "unix://"))
	if _, err := store.StartEmbedded(store.EmbeddedConfig{Dir: dir}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second start: err = %v, want in use", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cli, err := store.Connect(store.Config{Endpoints: []string{e.Endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "/still", "here"); err != nil {
		t.Errorf("the first server no longer answers on its socket: %v", err)
	}
	if ep, err := store.ReadEndpoint(dir); err != nil || ep != e.Endpoint {
		t.Errorf("endpoint file after the second start: %q %v", ep, err)
	}
}

// A socket left behind by a killed portico does not block a restart.
func TestEmbeddedStartsOverAStaleSocket(t *testing.T) {
	dir := t.TempDir()
	if _, err := store.PrepareDataDir(dir); err != nil {
		t.Fatal(err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: store.SocketPath(dir), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	srv, err := store.StartEmbedded(store.EmbeddedConfig{Dir: dir})
	if err != nil {
		t.Fatalf("start over a stale socket: %v", err)
	}
	srv.Close()
}

// `portico etcd` (the compose stack) adds client listeners beside the
// data dir's socket: a unix socket in a shared 0700 dir (made 0600), or
// TCP; all serve the same store.
func TestEmbeddedServesExtraClientURLs(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	if _, err := store.PrepareDataDir(dir); err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(t.TempDir(), "s")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	extra := url.URL{Scheme: "unix", Path: filepath.Join(shared, "etcd.sock")}
	cfg := store.EmbeddedConfig{Dir: dir, ClientURLs: []url.URL{{Scheme: "http", Host: addr}, extra}}
	if _, err := store.StartEmbedded(cfg); err == nil || !strings.Contains(err.Error(), "0755") || !strings.Contains(err.Error(), shared) {
		t.Fatalf("socket in an open dir: err = %v, want one naming %s and its mode", err, shared)
	}
	if err := os.Chmod(shared, 0o700); err != nil {
		t.Fatal(err)
	}
	srv, err := store.StartEmbedded(cfg)
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	t.Cleanup(srv.Close)
	if fi, err := os.Stat(extra.Path); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("extra socket %s: %v %v, want a socket with 0600", extra.Path, fi, err)
	}
	if !strings.HasPrefix(srv.Endpoint(), "unix:///") {
		t.Errorf("endpoint %q: the socket stays the recorded endpoint", srv.Endpoint())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tcp, err := store.Connect(store.Config{Endpoints: []string{"http://" + addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	if _, err := tcp.Put(ctx, "/k", "over tcp"); err != nil {
		t.Fatalf("client over http://%s: %v", addr, err)
	}
	sock, err := store.Connect(store.Config{Endpoints: []string{srv.Endpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	resp, err := sock.Get(ctx, "/k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "over tcp" {
		t.Fatalf("read over the socket: %v %v", resp, err)
	}
	shc, err := store.Connect(store.Config{Endpoints: []string{extra.String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer shc.Close()
	if resp, err := shc.Get(ctx, "/k"); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read over the shared socket %s: %v %v", extra.String(), resp, err)
	}
	// A second server on the same shared socket is refused, not a thief.
	dir2 := t.TempDir()
	if _, err := store.PrepareDataDir(dir2); err != nil {
		t.Fatal(err)
	}
	if _, err := store.StartEmbedded(store.EmbeddedConfig{Dir: dir2, ClientURLs: []url.URL{extra}}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second server on %s: err = %v, want in use", extra.Path, err)
	}
}

// The embedded etcd keeps only a short raft log in memory and snapshots to
// disk every 1,000 entries (memory, docs/store.md): every acknowledged
// write must still be there after a restart, past several disk snapshots,
// and the revision must continue where it was (nothing lost or re-issued).
func TestEmbeddedKeepsEveryWriteAcrossSnapshots(t *testing.T) {
	dir := t.TempDir()
	if _, err := store.PrepareDataDir(dir); err != nil {
		t.Fatal(err)
	}
	const n = 2500 // more than two disk snapshots' worth of entries
	var rev int64
	for i := range 2 {
		srv, err := store.StartEmbedded(store.EmbeddedConfig{Dir: dir})
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		cli, err := store.Connect(store.Config{Endpoints: []string{srv.Endpoint()}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if i == 0 {
			errs := make(chan error, 8)
			for w := range 8 {
				go func() {
					for k := w; k < n; k += 8 {
						if _, err := cli.Put(ctx, fmt.Sprintf("/snap/%04d", k), strconv.Itoa(k)); err != nil {
							errs <- fmt.Errorf("put %d: %w", k, err)
							return
						}
					}
					errs <- nil
				}()
			}
			for range 8 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
		}
		resp, err := cli.Get(ctx, "/snap/", clientv3.WithPrefix())
		cancel()
		cli.Close()
		srv.Close()
		if err != nil {
			t.Fatalf("start %d: get: %v", i, err)
		}
		if len(resp.Kvs) != n {
			t.Fatalf("start %d: %d keys, want %d", i, len(resp.Kvs), n)
		}
		for _, kv := range resp.Kvs {
			if k, err := strconv.Atoi(strings.TrimPrefix(string(kv.Key), "/snap/")); err != nil || strconv.Itoa(k) != string(kv.Value) {
				t.Fatalf("start %d: %s = %s", i, kv.Key, kv.Value)
			}
		}
		if i == 1 && resp.Header.Revision != rev {
			t.Fatalf("revision after restart %d, before %d", resp.Header.Revision, rev)
		}
		rev = resp.Header.Revision
	}
	snaps, err := filepath.Glob(filepath.Join(dir, "etcd", "member", "snap", "*.snap"))
	if err != nil || len(snaps) == 0 {
		t.Fatalf("no disk snapshot after %d writes: %v %v", n, snaps, err)
	}
}
