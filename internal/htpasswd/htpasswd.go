// Package htpasswd checks the htpasswd files portico.auth-file names and
// keeps the copies nginx's workers read (docs/labels.md, "Basic auth").
//
// A file lives in the operator's directory (--auth-dir) and a container
// names it by its bare name; Portico reads it through an os.Root of that
// directory (no path, no symbolic link out of it), accepts it only when
// every user's hash is bcrypt ($2a$, $2b$, $2y$) or SHA-crypt ($5$, $6$),
// and copies it into a directory of its own that only nginx's workers'
// group may read. A file that is missing or refused is copied as an empty
// file: nginx then refuses every user (401), so a site never goes
// unprotected. Copies are refreshed when the source changes (Refresh).
package htpasswd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Bounds of a file.
const (
	MaxBytes = 1 << 20
	MaxUsers = 10000
)

var (
	bcryptHash = regexp.MustCompile(`^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$`)
	shaHash    = regexp.MustCompile(`^\$[56]\$(rounds=[0-9]{1,9}\$)?[^$:\s]{0,16}\$[./A-Za-z0-9]{43}([./A-Za-z0-9]{43})?$`)
)

// Check accepts an htpasswd file whose every line is "user:hash" with a
// bcrypt or SHA-crypt hash, a comment (#) or blank. The error names the
// first bad line by number, never its content (it may hold a password).
func Check(b []byte) error {
	if len(b) > MaxBytes {
		return fmt.Errorf("%d bytes, over %d", len(b), MaxBytes)
	}
	users := 0
	seen := map[string]bool{}
	for n, line := range bytes.Split(b, []byte("\n")) {
		l := strings.TrimSuffix(string(line), "\r")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		user, hash, ok := strings.Cut(l, ":")
		if !ok || user == "" || len(user) > 255 || strings.ContainsFunc(user, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
			return fmt.Errorf("line %d: not user:hash with a user name of printable characters", n+1)
		}
		// nginx ignores what follows a second colon (a comment field).
		hash, _, _ = strings.Cut(hash, ":")
		switch {
		case bcryptHash.MatchString(hash), shaHash.MatchString(hash):
		case strings.HasPrefix(hash, "$apr1$"), strings.HasPrefix(hash, "$1$"):
			return fmt.Errorf("line %d: an MD5 hash; use bcrypt (htpasswd -B) or SHA-crypt", n+1)
		case strings.HasPrefix(hash, "{SHA}"), strings.HasPrefix(hash, "{PLAIN}"):
			return fmt.Errorf("line %d: an unsalted or plain password; use bcrypt (htpasswd -B) or SHA-crypt", n+1)
		default:
			return fmt.Errorf("line %d: not a bcrypt or SHA-crypt hash (plain text and crypt(3) DES are refused; use htpasswd -B)", n+1)
		}
		if seen[user] {
			return fmt.Errorf("line %d: user %q given twice", n+1, user)
		}
		seen[user] = true
		if users++; users > MaxUsers {
			return fmt.Errorf("more than %d users", MaxUsers)
		}
	}
	return nil
}

// Copier keeps Dst's copies of the files of Src that routes name.
type Copier struct {
	// Src is the operator's directory (--auth-dir); "" has no file, so
	// every copy is empty.
	Src string
	// Dst holds the copies (created by Prepare).
	Dst string
	// GID, when >= 0, is the group of nginx's workers: Dst is 0750 and the
	// copies 0640, group GID. -1: 0700 and 0600 (the workers run as
	// Portico's own user).
	GID int

	mu     sync.Mutex
	names  []string
	copied map[string][]byte // name -> the bytes in Dst
	errs   map[string]string // name -> the error last reported
}

// Prepare creates Dst with its mode and group.
func (c *Copier) Prepare() error {
	mode := os.FileMode(0o700)
	if c.GID >= 0 {
		mode = 0o750
	}
	if err := os.MkdirAll(c.Dst, mode); err != nil {
		return fmt.Errorf("auth copies dir: %w", err)
	}
	if err := os.Chmod(c.Dst, mode); err != nil {
		return fmt.Errorf("auth copies dir: %w", err)
	}
	if c.GID >= 0 {
		if err := os.Chown(c.Dst, -1, c.GID); err != nil {
			return fmt.Errorf("auth copies dir: %w", err)
		}
	}
	return nil
}

// Sync makes the copies of names (bare file names, checked by the
// caller's parser) current, drops copies no name needs, and returns one
// error per file that is missing or refused (its copy is then empty:
// everyone gets 401) and has not been reported with the same error.
func (c *Copier) Sync(names []string) []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	names = slices.Clone(names)
	slices.Sort(names)
	c.names = slices.Compact(names)
	return c.refresh(true)
}

// Refresh re-reads the files Sync last named: a changed file takes effect
// at once (nginx reads an auth_basic_user_file on every request).
func (c *Copier) Refresh() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refresh(false)
}

func (c *Copier) refresh(prune bool) []error {
	if c.copied == nil {
		c.copied, c.errs = map[string][]byte{}, map[string]string{}
	}
	var errs []error
	want := map[string]bool{}
	for _, name := range c.names {
		want[name] = true
		b, err := c.read(name)
		if err == nil {
			err = Check(b)
		}
		if err != nil {
			b = nil
			msg := fmt.Sprintf("portico.auth-file %q: %v; its sites refuse every user", name, err)
			if c.errs[name] != msg {
				errs = append(errs, errors.New(msg))
			}
			c.errs[name] = msg
		} else {
			delete(c.errs, name)
		}
		if old, ok := c.copied[name]; ok && bytes.Equal(old, b) {
			continue
		}
		if werr := c.write(name, b); werr != nil {
			errs = append(errs, fmt.Errorf("portico.auth-file %q: write copy: %w", name, werr))
			delete(c.copied, name)
			continue
		}
		c.copied[name] = b
	}
	if prune {
		for name := range c.copied {
			if !want[name] {
				os.Remove(filepath.Join(c.Dst, name))
				delete(c.copied, name)
				delete(c.errs, name)
			}
		}
	}
	return errs
}

// read reads Src/name through an os.Root: a symbolic link may not leave
// Src; at most MaxBytes+1 bytes are read.
func (c *Copier) read(name string) ([]byte, error) {
	if c.Src == "" {
		return nil, errors.New("no --auth-dir is set")
	}
	if strings.ContainsAny(name, `/\`) || name == "." || name == ".." || name == "" {
		return nil, errors.New("not a bare file name")
	}
	root, err := os.OpenRoot(c.Src)
	if err != nil {
		return nil, fmt.Errorf("--auth-dir: %w", err)
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open in --auth-dir: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	return io.ReadAll(io.LimitReader(f, MaxBytes+1))
}

// write replaces Dst/name with b: a temporary file given its group and
// mode first, then renamed, so nginx never reads a half-written or
// unreadable copy.
func (c *Copier) write(name string, b []byte) error {
	f, err := os.CreateTemp(c.Dst, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	mode := os.FileMode(0o600)
	if c.GID >= 0 {
		mode = 0o640
		if err := f.Chown(-1, c.GID); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(c.Dst, name))
}
