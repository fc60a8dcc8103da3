package htpasswd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	sha512 = "$6$abcdefgh$oGoxMtczJ0/xYkNKQnGuC3pOdNoGsZRZNs7n5JzX8KfMJWEmD2Bx4wBt/tMCPvjE87aPyrlQPEKxEcxV6d4J6."
	sha256 = "$5$abcdefgh$wWSyPlKTzFUHfIwkmGM/hIlQGeKknJQ5dNUaz3L1J91"
	bcrypt = "$2a$05$L9OGhUL6Yh8cZLj7twiSo.VcLRmAQHYtdUxQucrvziJiHCG5mhtpO"
	apr1   = "$apr1$abcdefgh$jIudz8hddYl1huJKFV04g0"
)

func TestCheck(t *testing.T) {
	for _, ok := range []string{
		"", "# only a comment\n", "a:" + sha512, "a:" + sha256 + "\r\nb:" + bcrypt + "\n", "a:" + bcrypt + ":comment",
		"a:$6$rounds=5000$salt$" + strings.Repeat("a", 86), "a:$2y$10$" + strings.Repeat("b", 53),
	} {
		if err := Check([]byte(ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"a:" + apr1, "a:secret", "a:{SHA}abc=", "a:{PLAIN}x", "a:abJnggxhB/yWI", "a:$1$x$y", ":" + sha512, "a b:" + sha512,
		"a:" + sha512 + "\na:" + bcrypt, "a:$2a$05$short", "a:$6$salt$short", "a\x00:" + sha512, "justaline",
		strings.Repeat("x", MaxBytes+1),
	} {
		err := Check([]byte(bad))
		if err == nil {
			t.Errorf("%.80q accepted", bad)
			continue
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "abJnggxhB") {
			t.Errorf("error shows the file's content: %v", err)
		}
	}
}

func TestCopier(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "auth")
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(src, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("good", "u:"+sha512+"\n")
	write("md5", "u:"+apr1+"\n")
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("u:"+sha512+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	c := &Copier{Src: src, Dst: dst, GID: -1}
	if err := c.Prepare(); err != nil {
		t.Fatal(err)
	}
	errs := c.Sync([]string{"good", "md5", "missing", "link", "good"})
	if len(errs) != 3 {
		t.Fatalf("errors %v, want md5, missing and link refused", errs)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(filepath.Join(dst, name))
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", name, st.Mode())
		}
		return string(b)
	}
	if read("good") != "u:"+sha512+"\n" || read("md5") != "" || read("missing") != "" || read("link") != "" {
		t.Errorf("copies wrong")
	}
	if errs := c.Refresh(); len(errs) != 0 {
		t.Errorf("errors reported again: %v", errs)
	}
	// A change is copied; a file that becomes bad is emptied.
	write("good", "v:"+bcrypt+"\n")
	write("md5", "u:"+sha256+"\n")
	if errs := c.Refresh(); len(errs) != 0 {
		t.Errorf("refresh: %v", errs)
	}
	if read("good") != "v:"+bcrypt+"\n" || read("md5") != "u:"+sha256+"\n" {
		t.Errorf("refresh did not copy the changes")
	}
	write("good", "v:plain\n")
	if errs := c.Refresh(); len(errs) != 1 || read("good") != "" {
		t.Errorf("a bad change: errors %v, copy %q", errs, read("good"))
	}
	// A name no route uses any more goes.
	c.Sync([]string{"md5"})
	if _, err := os.Stat(filepath.Join(dst, "good")); !os.IsNotExist(err) {
		t.Errorf("unused copy kept: %v", err)
	}
}
