package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// EmbeddedHealth is what the supervisor of the embedded etcd knows about
// it, kept in a small file in the data dir (HealthFile) so that `portico
// status` can say why the store does not answer: the store itself is the
// one thing it cannot ask then.
type EmbeddedHealth struct {
	Up    bool      `json:"up"`
	Since time.Time `json:"since"`
	// Reason is one of the Reason* codes (also the metric's label).
	Reason string `json:"reason,omitempty"`
	// Problem is etcd's own words: the line of its output that names the
	// failure, cut to maxProblem bytes.
	Problem string `json:"problem,omitempty"`
	// File is the file or dir at fault.
	File string `json:"file,omitempty"`
	// Advice says what to do.
	Advice string `json:"advice,omitempty"`
	// Failures counts the failed starts and deaths since portico started.
	Failures int `json:"failures,omitempty"`
}

// Reasons a failure of the embedded etcd is sorted into.
const (
	ReasonDiskFull  = "disk-full"
	ReasonCorruptDB = "corrupt-db"
	ReasonWAL       = "wal"
	ReasonDataDir   = "data-dir"
	ReasonOther     = "other"
	ReasonStopped   = "stopped"
	ReasonStarting  = "starting"
)

// Reasons lists every failure reason, for metrics that need the set.
var Reasons = []string{ReasonDiskFull, ReasonCorruptDB, ReasonWAL, ReasonDataDir, ReasonOther}

const (
	// healthFile is the supervisor's report under the data dir.
	healthFile = "etcd-health.json"
	// healthSize is the fixed size of the health file: it is rewritten
	// in place, so that a full disk, which stops etcd, does not also stop
	// the report of it (no new block, no new inode).
	healthSize = 4096
	maxProblem = 600
)

// HealthFile is the path of the embedded etcd's health report.
func HealthFile(dataDir string) string { return filepath.Join(dataDir, healthFile) }

// Diagnose sorts a failure of the embedded etcd from the last lines of
// its output and its exit error into a reason, the file at fault and what
// to do. dataDir is portico's data dir (etcd's is dataDir/etcd).
func Diagnose(lines []string, exitErr error, dataDir string) EmbeddedHealth {
	etcdDir := filepath.Join(dataDir, "etcd")
	all := append([]string(nil), lines...)
	if exitErr != nil {
		all = append(all, exitErr.Error())
	}
	find := func(subs ...string) (string, bool) {
		for i := len(all) - 1; i >= 0; i-- {
			l := strings.ToLower(all[i])
			for _, s := range subs {
				if strings.Contains(l, s) {
					return all[i], true
				}
			}
		}
		return "", false
	}
	h := EmbeddedHealth{}
	if l, ok := find("no space left on device", "disk quota exceeded", "file too large"); ok {
		h.Reason, h.Problem, h.File = ReasonDiskFull, l, etcdDir
		h.Advice = fmt.Sprintf("the filesystem that holds %s is full: free space on it (df -h %s); etcd is started again by itself, with backoff, and the store catches up. nginx keeps serving its last good config meanwhile", etcdDir, dataDir)
	} else if l, ok := find("failed to open database", "failed to recover v3 backend", "invalid database", "bbolt", "failed to open backend", "database file", "db file"); ok {
		db := filepath.Join(etcdDir, "member", "snap", "db")
		h.Reason, h.Problem, h.File = ReasonCorruptDB, l, db
		h.Advice = fmt.Sprintf("etcd's database %s is damaged and etcd will not start on it. Stop portico, move %s aside (keep it for a post-mortem), and restore %s from a backup of the data dir or with `etcdutl snapshot restore <snapshot.db> --data-dir %s`. With no backup, moving %s aside starts an empty store: the reporter writes every container's record again, certificates are obtained again (ACME rate limits apply) and a new local CA root is made, which clients must trust again. nginx keeps serving its last good config meanwhile", db, etcdDir, etcdDir, etcdDir, etcdDir)
	} else if l, ok := find("wal", "crc mismatch"); ok {
		wal := filepath.Join(etcdDir, "member", "wal")
		h.Reason, h.Problem, h.File = ReasonWAL, l, wal
		h.Advice = fmt.Sprintf("etcd cannot open or create its write-ahead log in %s. Check the space and permissions there; if the log is damaged, stop portico and restore %s from a backup (or move it aside to start an empty store, see docs/store.md). nginx keeps serving its last good config meanwhile", wal, etcdDir)
	} else if l, ok := find("not a directory", "permission denied", "read-only file system", "data dir"); ok {
		h.Reason, h.Problem, h.File = ReasonDataDir, l, etcdDir
		h.Advice = fmt.Sprintf("etcd cannot use %s: it must be a directory of this user (uid %d) on a writable filesystem. nginx keeps serving its last good config meanwhile", etcdDir, os.Getuid())
	} else {
		h.Reason, h.File = ReasonOther, etcdDir
		if len(all) > 0 {
			h.Problem = all[len(all)-1]
		}
		h.Advice = "see the log lines of stage=etcd before this one. nginx keeps serving its last good config meanwhile"
	}
	h.Problem = problemText(h.Problem)
	if len(h.Problem) > maxProblem {
		h.Problem = h.Problem[:maxProblem] + "…"
	}
	return h
}

// problemText shortens a line of etcd's JSON log (zap) to its message and
// error, without the stack trace; other lines are kept as they are.
func problemText(line string) string {
	var z struct {
		Msg   string `json:"msg"`
		Error string `json:"error"`
		Path  string `json:"path"`
	}
	if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &z) != nil || z.Msg == "" {
		return line
	}
	out := "etcd: " + z.Msg
	if z.Path != "" {
		out += " " + z.Path
	}
	if z.Error != "" {
		out += ": " + z.Error
	}
	return out
}

// WALSegmentSize is how big etcd's WAL segments should be on a filesystem
// with free bytes available. etcd preallocates every segment (and the next
// one) at its full size, 64 MB by default: on a small filesystem the first
// start fails for want of room that the store, a few MB of records, never
// needs. A segment is cut at 1/8 of the free space, in whole MB, at least
// 1 MB and at most etcd's 64 MB; the size only sets when a new segment
// file is cut, so it may differ between starts.
func WALSegmentSize(free uint64) int64 {
	const mb = 1000 * 1000
	const def = 64 * mb
	n := int64(free/8) / mb * mb
	return max(mb, min(def, n))
}

// HealthWriter keeps the health file up to date. It writes in place a
// file of fixed size, so that it keeps working once the disk is full.
type HealthWriter struct {
	path string
	f    *os.File
}

// NewHealthWriter opens (or creates) the health file of dataDir. An error
// opening it is not fatal: Write tries again.
func NewHealthWriter(dataDir string) *HealthWriter {
	w := &HealthWriter{path: HealthFile(dataDir)}
	w.open()
	return w
}

func (w *HealthWriter) open() error {
	if w.f != nil {
		return nil
	}
	f, err := os.OpenFile(w.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("health file %s: %w", w.path, err)
	}
	w.f = f
	return nil
}

// Write replaces the report.
func (w *HealthWriter) Write(h EmbeddedHealth) error {
	if err := w.open(); err != nil {
		return err
	}
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("health file %s: %w", w.path, err)
	}
	if len(b) >= healthSize {
		return fmt.Errorf("health file %s: report of %d bytes is over %d", w.path, len(b), healthSize)
	}
	buf := bytes.Repeat([]byte(" "), healthSize)
	copy(buf, b)
	buf[healthSize-1] = '\n'
	if _, err := w.f.WriteAt(buf, 0); err != nil {
		return fmt.Errorf("health file %s: %w", w.path, err)
	}
	return nil
}

// Close closes the file.
func (w *HealthWriter) Close() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

// ReadHealth reads the health report of dataDir's embedded etcd.
func ReadHealth(dataDir string) (EmbeddedHealth, error) {
	var h EmbeddedHealth
	b, err := os.ReadFile(HealthFile(dataDir))
	if err != nil {
		return h, fmt.Errorf("embedded etcd health: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return h, errors.New("embedded etcd health: empty report")
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("embedded etcd health %s: %w", HealthFile(dataDir), err)
	}
	return h, nil
}
