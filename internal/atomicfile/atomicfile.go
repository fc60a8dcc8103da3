// Package atomicfile replaces files so that a reader sees the old or the
// new content, never a part: the one way Portico writes a file others read
// (nginx's config, certificates, the dynamic path's state, domains.txt, the
// etcd endpoint file).
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with b, with mode: temp file in the same dir, fsync,
// rename, fsync dir.
func Write(path string, b []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
