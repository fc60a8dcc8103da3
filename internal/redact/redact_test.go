package redact

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"no url", "nothing to see: token=abc", "nothing to see: token=abc"},
		{"empty", "", ""},
		{"plain url kept", "GET https://api.example.com/v1/zones failed", "GET https://api.example.com/v1/zones failed"},
		{"query dropped", "https://api.example.com/v1?token=s3cret&x=1", "https://api.example.com/v1?REDACTED"},
		{"fragment dropped", "https://h/p#access_token=s3cret", "https://h/p?REDACTED"},
		{"userinfo dropped", "http://user:s3cret@127.0.0.1:8080/present", "http://REDACTED@127.0.0.1:8080/present"},
		{"user only", "https://s3cret@h/", "https://REDACTED@h/"},
		{"both", "https://u:s3cret@h:1/p?k=s3cret", "https://REDACTED@h:1/p?REDACTED"},
		{"url.Error quoting", `Post "https://u:s3cret@h/p?k=s3cret": dial tcp: refused`, `Post "https://REDACTED@h/p?REDACTED": dial tcp: refused`},
		{"quoted with spaces in the query", `Get "https://h/p?k=s3 cret": x`, `Get "https://h/p?REDACTED": x`},
		{"lego request brackets", "httpreq: unexpected status code: [request: POST http://u:s3cret@127.0.0.1:1234/present?token=s3cret] [status code: 500] body: x",
			"httpreq: unexpected status code: [request: POST http://REDACTED@127.0.0.1:1234/present?REDACTED] [status code: 500] body: x"},
		{"ipv6 host kept", "[request: POST http://u:s3cret@[::1]:8080/p?t=s3cret]", "[request: POST http://REDACTED@[::1]:8080/p?REDACTED]"},
		{"ipv6 no userinfo", "see http://[::1]:8080/p.", "see http://[::1]:8080/p."},
		{"two urls", "a https://h/?t=s3cret b ftp://u:s3cret@f/x", "a https://h/?REDACTED b ftp://REDACTED@f/x"},
		{"upper-case scheme", "HTTPS://U:s3cret@H/?T=s3cret", "HTTPS://REDACTED@H/?REDACTED"},
		{"at in path kept", "https://h/users/a@b", "https://h/users/a@b"},
		{"at in path with port kept", "https://h:8443/users/a@b", "https://h:8443/users/a@b"},
		{"unescaped slash in password", "https://user:pa/s3cret@h/x", "https://REDACTED@h/x"},
		{"empty password then slash", "https://user:/s3cret@h/x", "https://REDACTED@h/x"},
		{"many at signs", "https://a@b:s3cret@h/", "https://REDACTED@h/"},
		{"no scheme: not a url", "://u:pw@h/", "://u:pw@h/"},
		{"scheme must start with a letter", "1+://x", "1+://x"},
		{"newline ends a url", "https://h/p?t=s3cret\nnext line", "https://h/p?REDACTED\nnext line"},
		{"angle brackets", "<https://u:s3cret@h/?t=s3cret>", "<https://REDACTED@h/?REDACTED>"},
		{"parentheses", "(see https://h/?t=s3cret)", "(see https://h/?REDACTED)"},
		{"escaped quote inside %q", `Get "https://h/?a=\"s3cret\"": x`, `Get "https://h/?REDACTED": x`},
		{"single quotes", "'https://h/?t=s3 cret'", "'https://h/?REDACTED'"},
		{"url at end", "x https://h?t=s3cret", "x https://h?REDACTED"},
		{"just scheme", "https://", "https://"},
		{"percent-encoded userinfo", "https://u%3Ax:s3%40cret@h/", "https://REDACTED@h/"},
		{"json escaped", `{"url":"https://h/?t=s3cret"}`, `{"url":"https://h/?REDACTED"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := String(tc.in)
			if got != tc.want {
				t.Errorf("String(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
			if strings.Contains(got, "s3cret") || strings.Contains(got, "s3 cret") {
				t.Errorf("String(%q) = %q still holds the secret", tc.in, got)
			}
			if again := String(got); again != got {
				t.Errorf("not idempotent: %q -> %q", got, again)
			}
		})
	}
}

func TestErrorWrapsRealURLErrors(t *testing.T) {
	if Error(nil) != "" {
		t.Error("Error(nil) not empty")
	}
	u, _ := url.Parse("https://user:s3cret@api.example.com/v1/records?api_key=s3cret")
	err := fmt.Errorf("present: %w", &url.Error{Op: "Post", URL: u.String(), Err: errors.New("connection refused")})
	got := Error(err)
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "api.example.com/v1/records") {
		t.Errorf("Error = %q", got)
	}
}

func FuzzString(f *testing.F) {
	f.Add("https://u:p@h/?q")
	f.Add(`Post "http://[::1]:1/x?y": z`)
	f.Fuzz(func(t *testing.T, s string) {
		got := String(s)
		if String(got) != got {
			t.Errorf("not idempotent on %q", s)
		}
		if !strings.Contains(s, "://") && got != s {
			t.Errorf("changed text without a URL: %q -> %q", s, got)
		}
	})
}

func TestHandler(t *testing.T) {
	var buf strings.Builder
	log := Logger(slog.New(slog.NewTextHandler(&buf, nil))).With("endpoint", "https://u:s3cret@h/")
	u := &url.URL{Scheme: "https", User: url.UserPassword("u", "s3cret"), Host: "h", RawQuery: "t=s3cret"}
	log.WithGroup("g").Error("failed https://h/?t=s3cret",
		"err", fmt.Errorf("x: %w", &url.Error{Op: "Get", URL: u.String(), Err: errors.New("500")}),
		"url", u, "names", []string{"https://h/?t=s3cret"}, slog.Group("sub", "s", "http://h/?k=s3cret"), "n", 3)
	out := buf.String()
	if strings.Contains(out, "s3cret") {
		t.Errorf("log holds the secret:\n%s", out)
	}
	for _, want := range []string{"https://REDACTED@h/", "g.n=3", "https://h/?REDACTED"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if NewHandler(log.Handler()) != log.Handler() {
		t.Error("double wrap")
	}
}
