package pathprefix

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := []string{"/", "/api", "/api/", "/api/v2/service", "/a-b_c.d~e", "/x!&()*+,=:@", "/.well-known/x", strings.Repeat("/a", MaxBytes/2)}
	for _, s := range good {
		if got, err := Parse(s); err != nil || got != s {
			t.Errorf("Parse(%q) = %q, %v; want it unchanged", s, got, err)
		}
	}
	bad := map[string]string{
		"":                                  "empty",
		"api":                               "start with /",
		"~^/(a|b)/":                         "regular expressions",
		"//x":                               "empty segment",
		"/a//b":                             "empty segment",
		"/a/../b":                           `".."`,
		"/..":                               `".."`,
		"/a/./b":                            `"."`,
		"/a/.":                              `"."`,
		"/a b":                              "not allowed",
		"/a\tb":                             "not allowed",
		"/a\x00":                            "not allowed",
		"/a\n":                              "not allowed",
		"/a\x7f":                            "not allowed",
		`/a"b`:                              "not allowed",
		"/a'b":                              "not allowed",
		"/a{b":                              "not allowed",
		"/a}b":                              "not allowed",
		"/a;b":                              "not allowed",
		"/a$b":                              "not allowed",
		"/a#b":                              "not allowed",
		"/a%2fb":                            "not allowed",
		"/a?b":                              "not allowed",
		`/a\b`:                              "not allowed",
		"/café":                             "not allowed",
		"/a`b":                              "not allowed",
		"/a[b]":                             "not allowed",
		"/" + strings.Repeat("a", MaxBytes): "over the limit",
	}
	for s, want := range bad {
		if _, err := Parse(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v; want an error with %q", s, err, want)
		}
	}
	if d, err := ParseDest(""); err != nil || d != "" {
		t.Errorf("ParseDest(\"\") = %q, %v", d, err)
	}
	if _, err := ParseDest("x"); err == nil {
		t.Error("ParseDest(x) accepted")
	}
}

func TestMatch(t *testing.T) {
	ps := []string{"/", "/api", "/api/v2/", "/b/", "/b"}
	Sort(ps)
	if want := "/api/v2/ /api /b/ /b /"; strings.Join(ps, " ") != want {
		t.Fatalf("Sort: %q, want %q", strings.Join(ps, " "), want)
	}
	for _, c := range []struct {
		uri      string
		want     string
		redirect bool
	}{
		{"/", "/", false},
		{"/x", "/", false},
		{"/api", "/api", false},
		{"/apix", "/api", false}, // string prefix, as nginx, nginx-proxy and Traefik
		{"/api/v2/x", "/api/v2/", false},
		{"/api/v2", "/api/v2/", true}, // nginx's 301 to the prefix with its slash
		{"/api/v", "/api", false},
		{"/b", "/b", false}, // the path is itself a prefix: no redirect
		{"/b/c", "/b/", false},
	} {
		i, r := Match(ps, c.uri)
		if i < 0 || ps[i] != c.want || r != c.redirect {
			got := "none"
			if i >= 0 {
				got = ps[i]
			}
			t.Errorf("Match(%q) = %s, redirect %v; want %s, %v", c.uri, got, r, c.want, c.redirect)
		}
	}
	if i, _ := Match([]string{"/api/"}, "/x"); i != -1 {
		t.Errorf("Match without root: %d, want -1", i)
	}
}

func TestUpstream(t *testing.T) {
	for _, c := range []struct {
		prefix string
		strip  bool
		dest   string
		uri    string
		want   string
	}{
		{"/api", false, "", "/api/x", "/api/x"},
		{"/api", true, "", "/api/x", "/x"},
		{"/api", true, "", "/api", "/"},
		{"/api", true, "", "/apix", "/x"},
		{"/api/", true, "", "/api/x", "/x"},
		{"/api/", true, "", "/api/", "/"},
		{"/app1/", false, "/", "/app1/foo", "/foo"},
		{"/app1", false, "/", "/app1/foo", "//foo"}, // nginx-proxy's literal replacement
		{"/app1/", false, "/base/", "/app1/foo", "/base/foo"},
		{"/", false, "/base/", "/foo", "/base/foo"},
		{"/", true, "", "/foo", "/foo"},
	} {
		if got := Upstream(c.prefix, c.strip, c.dest, c.uri); got != c.want {
			t.Errorf("Upstream(%q, %v, %q, %q) = %q, want %q", c.prefix, c.strip, c.dest, c.uri, got, c.want)
		}
	}
}

func TestRegexQuote(t *testing.T) {
	if got, want := RegexQuote("/a.b(c)*+d"), `/a\.b\(c\)\*\+d`; got != want {
		t.Errorf("RegexQuote = %q, want %q", got, want)
	}
}
