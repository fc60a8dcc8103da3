package siteopts

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseRedirectTo(t *testing.T) {
	good := map[string]string{
		"https://new.example/":              "https://new.example/",
		"HTTP://New.Example:8080/A?b=C#d":   "http://new.example:8080/A?b=C#d",
		"https://[fd00::1]:8443/x":          "https://[fd00::1]:8443/x",
		"https://n.example/a%20b;c=(d)!*'+": "https://n.example/a%20b;c=(d)!*'+",
		"https://n.example":                 "https://n.example",
	}
	for in, want := range good {
		if got, err := ParseRedirectTo(in, false); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/relative", "//n.example/", "ftp://n.example/", "javascript:alert(1)", "https:n.example",
		"https://u:p@n.example/", "https://n.example/$host", "https://n.example/a b", `https://n.example/"`, "https://n.example/\\",
		"https://n.example/{x}", "https://n.example/%zz", "https://n.example/%2", "https://n.example/\r\nX: 1", "https://n.exämple/",
		"https://n_e.example/", "https://-n.example/", "https://n.example:0/", "https://n.example:99999/", "https://n.example:/",
		"https://" + strings.Repeat("a", 2048) + ".example/", "https://[fd00::1/", "https:///path", "https://n.example\t/"} {
		if got, err := ParseRedirectTo(in, false); err == nil {
			t.Errorf("%q accepted as %q", in, got)
		}
	}
	for _, in := range []string{"https://n.example/?a=1", "https://n.example/#x", "https://n.example/?"} {
		if _, err := ParseRedirectTo(in, true); err == nil {
			t.Errorf("%q accepted with keep-path", in)
		}
	}
}

func TestHeaderNamesAndValues(t *testing.T) {
	for _, n := range []string{"X-A", "Cache-Control", "x1"} {
		if err := ParseHeaderName(n, true); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	for _, n := range []string{"", "1X", "X_A", "X$A", "X A", "X:A", "Host", "HOST", "content-length", "Connection", "X-Forwarded-For",
		"x-accel-redirect", strings.Repeat("a", 65)} {
		if ParseHeaderName(n, true) == nil {
			t.Errorf("request header %q accepted", n)
		}
	}
	for _, n := range []string{"Server", "content-type", "Strict-Transport-Security", "Transfer-Encoding"} {
		if ParseHeaderName(n, false) == nil {
			t.Errorf("response header %q accepted", n)
		}
	}
	for _, v := range []string{"", "a", `a "$b" \ {c}; #d`, strings.Repeat("~", 1024)} {
		if err := ParseHeaderValue(v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	for _, v := range []string{" a", "a ", "a\tb", "a\r\nb", "a\x00", "é", "\x7f", strings.Repeat("a", 1025)} {
		if ParseHeaderValue(v) == nil {
			t.Errorf("value %q accepted", v)
		}
	}
}

func TestFields(t *testing.T) {
	o := Options{
		Redirect: Redirect{To: "https://n.example/", Code: 307, KeepPath: true, From: []string{"www.a.test"}},
		Headers: Headers{Security: true, Response: []Header{{Name: "X-A", Value: "a b%c"}, {Name: "X-B", Value: ""}},
			Request: []Header{{Name: "X-T", Value: "$x"}}},
	}
	want := []Field{{"redirect", "307 1 https://n.example"}, {"request-headers", "X-T:$x"},
		{"response-headers", "X-A:a%20b%25c X-B:"}, {"security-headers", "1"}}
	if got := o.Fields(); !reflect.DeepEqual(got, want) {
		t.Errorf("fields %q, want %q", got, want)
	}
	if got := (Options{Redirect: Redirect{Host: "a.test"}}).Fields(); !reflect.DeepEqual(got, []Field{{"redirect-host", "a.test"}}) {
		t.Errorf("redirect-host fields %q", got)
	}
	if (Options{}).Fields() != nil {
		t.Error("no options, some fields")
	}
}

func TestDiff(t *testing.T) {
	a := Options{Headers: Headers{Response: []Header{{Name: "X-A", Value: "1"}}}}
	if l, _, _ := a.Diff(a); l != "" {
		t.Errorf("same options differ in %s", l)
	}
	b := Options{Headers: Headers{Response: []Header{{Name: "x-a", Value: "2"}}}}
	if l, m, th := b.Diff(a); l != LabelResponseHeader+"X-A" && l != LabelResponseHeader+"x-a" || m != `"2"` || th != `"1"` {
		t.Errorf("diff %s %s %s", l, m, th)
	}
	c := Options{Redirect: Redirect{To: "https://n.example/", Code: 302}}
	d := Options{Redirect: Redirect{To: "https://n.example/"}}
	if l, m, th := c.Diff(d); l != LabelRedirectCode || m != "302" || th != "301" {
		t.Errorf("diff %s %s %s", l, m, th)
	}
	if l, _, _ := (Options{Redirect: Redirect{Host: "a.test"}}).Diff(Options{}); l != LabelRedirectFrom {
		t.Errorf("redirect route vs vhost: %q", l)
	}
}
