package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/portico/portico/internal/atomicfile"
)

// workerTempRecord is the file in the data dir that names the worker temp
// dir, so that every run of Portico on that data dir uses the same one.
const workerTempRecord = "nginx-worker-temp"

// workerTempDir picks where a supervised nginx's workers buffer request and
// response bodies. Run as root, nginx's workers drop to their own account,
// which cannot enter the 0700 data dir, so they get a directory under
// $TMPDIR (mode 0711, owned by root: nginx creates its client_body/,
// proxy/… inside, owned by the workers' account). Otherwise the workers
// are this user and the default <data-dir>/nginx/temp serves ("").
//
// The directory is kept across runs and named in <data-dir>/nginx-worker-temp:
// nginx.conf names it, so a new one per run would change nginx.conf at
// every start (a rewrite, which fails on a full disk) and leave the nginx
// a killed Portico left running, and which the next one adopts, without its
// temp dir. One that is no longer a root-owned 0711 directory (not a
// symlink) is not reused: a fresh one is made and recorded.
func workerTempDir(no *nginxOpts, euid int, dataDir string) (string, error) {
	if no.external() || euid != 0 {
		return "", nil
	}
	rec := filepath.Join(dataDir, workerTempRecord)
	if b, err := os.ReadFile(rec); err == nil {
		if d := strings.TrimSpace(string(b)); usableWorkerTemp(d) {
			return d, nil
		}
	}
	d, err := os.MkdirTemp("", "portico-nginx-temp-")
	if err != nil {
		return "", fmt.Errorf("nginx worker temp dir: %w", err)
	}
	if err := os.Chmod(d, 0o711); err != nil {
		os.RemoveAll(d)
		return "", fmt.Errorf("nginx worker temp dir %s: %w", d, err)
	}
	if err := atomicfile.Write(rec, []byte(d+"\n"), 0o600); err != nil {
		// Not fatal: the next run makes another one.
		return d, nil
	}
	return d, nil
}

// usableWorkerTemp says whether d may be reused as the worker temp dir:
// an absolute path under $TMPDIR that is a directory (not a symlink),
// owned by root, of mode 0711.
func usableWorkerTemp(d string) bool {
	if !filepath.IsAbs(d) || filepath.Dir(d) != filepath.Clean(os.TempDir()) {
		return false
	}
	fi, err := os.Lstat(d)
	if err != nil || !fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0 || fi.Mode().Perm() != 0o711 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0
}
