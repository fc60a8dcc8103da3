package nginx

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/store"
)

func TestLogErrorsOnce(t *testing.T) {
	var buf bytes.Buffer
	s := &Stage{log: slog.New(slog.NewTextHandler(&buf, nil)), logged: map[string]bool{}}
	a, b := errors.New("problem a"), errors.New("problem b")
	s.logErrors([]error{a})
	s.logErrors([]error{a, b})
	s.logErrors([]error{a, b})
	s.logErrors(nil)
	s.logErrors([]error{a}) // came back: logged again
	if got := strings.Count(buf.String(), "problem a"); got != 2 {
		t.Errorf("problem a logged %d times, want 2:\n%s", got, &buf)
	}
	if got := strings.Count(buf.String(), "problem b"); got != 1 {
		t.Errorf("problem b logged %d times, want 1", got)
	}
}

func TestCertFilesSyncAndPrune(t *testing.T) {
	dir := t.TempDir()
	c := &render.CertFiles{Dir: dir}
	keys := store.NewKeys("/t")
	good := selfSigned(t, 7, "a.test", "b.test")
	wild := selfSigned(t, 8, "*.w.test")
	mismatched := selfSigned(t, 9, "c.test")
	mismatched.KeyPEM = good.KeyPEM
	hostile := selfSigned(t, 10, "d.test")
	hostile.Primary = "../../etc"
	refs, errs := c.Sync(map[string]store.CertBundle{
		keys.CertBundle("a.test"):    good,
		keys.CertBundle("*.w.test"):  wild,
		keys.CertBundle("c.test"):    mismatched,
		keys.CertBundle("../../etc"): hostile,
		keys.CertBundle("other"):     selfSigned(t, 11, "e.test"), // key does not match primary
	})
	if len(refs) != 2 || refs[0].Primary != "*.w.test" || refs[1].Primary != "a.test" || len(errs) != 3 {
		t.Fatalf("refs %+v errs %v", refs, errs)
	}
	for _, e := range errs {
		if !strings.Contains(e.Error(), "key \"/t/certs/data/") {
			t.Errorf("error does not name the key: %v", e)
		}
	}
	for _, f := range []string{"cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"} {
		if _, err := os.Stat(filepath.Join(dir, "a.test", f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "_wildcard_.w.test", "fullchain.pem")); err != nil {
		t.Error(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, "a.test", "privkey.pem"))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("privkey mode %v", fi.Mode())
	}
	if err := c.Prune(refs[1:]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "_wildcard_.w.test")); !os.IsNotExist(err) {
		t.Errorf("pruned dir still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.test")); err != nil {
		t.Errorf("kept dir removed: %v", err)
	}
}

func TestValidHost(t *testing.T) {
	long := strings.Repeat("a", 63)
	for h, want := range map[string]bool{
		"a.test": true, "*.example.com": true, "xn--bcher-kva.example": true, "a_b.test": true, "localhost": true,
		long + ".test": true, long + "a.test": false, strings.Repeat(long+".", 4) + "ab": false,
		"": false, ".": false, "a..b": false, "a.": false, ".a": false, "-a.test": false, "a-.test": false,
		"A.test": false, "a.test;": false, "a test": false, "*": false, "*.": false, "a.*.b": false, "**.a": false,
		"a.test\n": false, "a/b": false, "é.test": false,
	} {
		if got := render.ValidHost(h); got != want {
			t.Errorf("ValidHost(%q) = %v, want %v", h, got, want)
		}
	}
}
