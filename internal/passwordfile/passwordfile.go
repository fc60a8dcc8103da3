// Package passwordfile creates password files that nobody else chose: the
// etcd users' passwords of the compose stack, generated at its first start
// (`portico etcd-setup --generate-passwords`).
package passwordfile

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Bytes is how much randomness a generated password carries (256 bits,
// 43 characters of unpadded base64url).
const Bytes = 32

// DirMode and FileMode are the modes Ensure gives what it creates.
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// Ensure makes sure path holds a password. An existing file is kept as it
// is, whatever it holds (created is false). A missing one is written with
// a fresh random password, mode 0600, through a temporary file linked into
// place, so that a reader never sees a partial password and two runs at
// once keep the first one; its directory is created 0700 when missing.
func Ensure(path string) (created bool, err error) {
	if _, err := os.Lstat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("password file %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return false, fmt.Errorf("password file %s: %w", path, err)
	}
	pw, err := Generate()
	if err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("password file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(FileMode); err != nil {
		tmp.Close()
		return false, fmt.Errorf("password file %s: %w", path, err)
	}
	if _, err := tmp.WriteString(pw + "\n"); err != nil {
		tmp.Close()
		return false, fmt.Errorf("password file %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("password file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("password file %s: %w", path, err)
	}
	// link, unlike rename, never replaces: a file that appeared meanwhile wins.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("password file %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return true, nil
}

// Generate returns a fresh random password: Bytes random bytes in unpadded
// base64url (no newline, quote or shell metacharacter).
func Generate() (string, error) {
	b := make([]byte, Bytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
