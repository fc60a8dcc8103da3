package store_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/store"
)

func TestDiagnose(t *testing.T) {
	dir := "/var/lib/portico"
	etcd := filepath.Join(dir, "etcd")
	for _, tc := range []struct {
		name   string
		lines  []string
		err    error
		reason string
		file   string
		advice string
		want   string // in Problem
	}{
		{"full disk commit", []string{`{"level":"fatal","msg":"failed to commit tx","error":"write /var/lib/portico/etcd/member/snap/db: no space left on device","stacktrace":"go.etcd.io/..."}`},
			errors.New("exit status 1"), store.ReasonDiskFull, etcd, "free space", "etcd: failed to commit tx: write /var/lib/portico/etcd/member/snap/db: no space left on device"},
		{"corrupt db", []string{"panic: failed to open database", "goroutine 1 [running]:", "main.main()"},
			errors.New("exit status 2"), store.ReasonCorruptDB, filepath.Join(etcd, "member", "snap", "db"), "etcdutl snapshot restore", "failed to open database"},
		{"wal", []string{"panic: failed to create WAL"}, nil, store.ReasonWAL, filepath.Join(etcd, "member", "wal"), "write-ahead log", "failed to create WAL"},
		{"wal on full disk is a full disk", []string{"panic: failed to create WAL", `{"msg":"failed to preallocate","error":"no space left on device"}`}, nil,
			store.ReasonDiskFull, etcd, "free space", "no space left on device"},
		{"not a dir", nil, errors.New("embedded etcd in /var/lib/portico/etcd: mkdir /var/lib/portico/etcd: not a directory"),
			store.ReasonDataDir, etcd, "must be a directory", "not a directory"},
		{"unknown", []string{"something odd"}, errors.New("signal: killed"), store.ReasonOther, etcd, "stage=etcd", "signal: killed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := store.Diagnose(tc.lines, tc.err, dir)
			if h.Reason != tc.reason || h.File != tc.file || !strings.Contains(h.Advice, tc.advice) || !strings.Contains(h.Problem, tc.want) {
				t.Errorf("got %+v", h)
			}
			if strings.Contains(h.Problem, "stacktrace") {
				t.Errorf("problem keeps the stack: %q", h.Problem)
			}
		})
	}
}

func TestDiagnoseBoundsProblem(t *testing.T) {
	h := store.Diagnose([]string{"no space left on device " + strings.Repeat("x", 10000)}, nil, "/d")
	if len(h.Problem) > 700 {
		t.Errorf("problem of %d bytes", len(h.Problem))
	}
}

func TestWALSegmentSize(t *testing.T) {
	const mb = 1000 * 1000
	for _, tc := range []struct {
		free uint64
		want int64
	}{
		{0, mb},
		{5 * mb, mb},
		{24 * mb, 3 * mb},
		{160 * mb, 20 * mb},
		{512 * mb, 64 * mb},
		{100 << 30, 64 * mb},
	} {
		if got := store.WALSegmentSize(tc.free); got != tc.want {
			t.Errorf("WALSegmentSize(%d) = %d, want %d", tc.free, got, tc.want)
		}
	}
}

// The health file is rewritten in place at a fixed size, and read back.
func TestHealthFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	w := store.NewHealthWriter(dir)
	defer w.Close()
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	long := store.EmbeddedHealth{Reason: store.ReasonCorruptDB, Since: since, Problem: strings.Repeat("p", 600), Advice: strings.Repeat("a", 1500), Failures: 3}
	for _, h := range []store.EmbeddedHealth{long, {Up: true, Since: since}} {
		if err := w.Write(h); err != nil {
			t.Fatal(err)
		}
		got, err := store.ReadHealth(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got != h {
			t.Errorf("read %+v, wrote %+v", got, h)
		}
	}
	if _, err := store.ReadHealth(t.TempDir()); err == nil {
		t.Error("no file: no error")
	}
}
