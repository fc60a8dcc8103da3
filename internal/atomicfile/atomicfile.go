// Package atomicfile replaces files so that a reader sees the old or the
// new content, never a part: the one way Portico writes a file others read
// (nginx's config, certificates, the dynamic path's state, domains.txt, the
// etcd endpoint file).
package atomicfile

import (
	"bytes"
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

// WriteIfChanged is Write, skipped when path already holds b with mode: a
// restart rewrites nothing it does not change, so it needs no free space
// (a full disk) to start from the files in place. It reports whether it
// wrote.
func WriteIfChanged(path string, b []byte, mode os.FileMode) (bool, error) {
	if Same(path, b, mode) {
		return false, nil
	}
	if err := Write(path, b, mode); err != nil {
		return false, err
	}
	return true, nil
}

// Same reports whether path is a regular file holding exactly b with mode.
func Same(path string, b []byte, mode os.FileMode) bool {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != mode.Perm() || fi.Size() != int64(len(b)) {
		return false
	}
	old, err := os.ReadFile(path)
	return err == nil && bytes.Equal(old, b)
}
