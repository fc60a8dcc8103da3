package certs

import (
	"reflect"
	"strings"
	"testing"

	"github.com/portico/portico/internal/store"
)

func TestParseDomains(t *testing.T) {
	in := strings.Join([]string{
		"# comment",
		"",
		"   ",
		"Example.com www.example.com  # trailing comment",
		"a.example.org\tb.example.org > alias_a",
		"*.wild.example > star_wild_example",
		"bad_name.example.com ok.example.com",
		"> lonely",
		"dup.example dup.example",
		"x.example\x00y",
		"\xff\xfe",
		"last.example",
	}, "\n")
	sets, warns := ParseDomains("domains.txt", []byte(in))
	want := [][]string{
		{"example.com", "www.example.com"},
		{"a.example.org", "b.example.org"},
		{"*.wild.example"},
		{"dup.example"},
		{"last.example"},
	}
	if !reflect.DeepEqual(sets, want) {
		t.Errorf("sets:\n got %q\nwant %q", sets, want)
	}
	wantWarn := []string{"line 5: alias", "line 7:", "line 8: alias without names", "line 10:", "line 11:"}
	if len(warns) != len(wantWarn) {
		t.Fatalf("warnings %q, want %d", warns, len(wantWarn))
	}
	for i, w := range wantWarn {
		if !strings.Contains(warns[i], w) || !strings.HasPrefix(warns[i], "domains.txt ") {
			t.Errorf("warning %d = %q, want it to contain %q", i, warns[i], w)
		}
	}
}

func TestParseDomainsHostile(t *testing.T) {
	huge := strings.Repeat("a", MaxDomainsFileBytes+1)
	if sets, warns := ParseDomains("f", []byte(huge)); sets != nil || len(warns) != 1 {
		t.Errorf("oversized file: %q %q", sets, warns)
	}
	long := strings.Repeat("a.", 200) + "com"
	if sets, warns := ParseDomains("f", []byte(long+"\nok.com")); len(sets) != 1 || len(warns) != 1 {
		t.Errorf("long name: %q %q", sets, warns)
	}
}

func TestFormatDomainsRoundTrip(t *testing.T) {
	certs := []store.WantedCert{
		{Primary: "*.example.com", Names: []string{"*.example.com"}},
		{Primary: "www.example.org", Names: []string{"www.example.org", "example.org"}},
	}
	out := string(FormatDomains(certs))
	wantLines := "*.example.com > star_example_com\nwww.example.org example.org\n"
	if !strings.HasSuffix(out, wantLines) || !strings.HasPrefix(out, "#") {
		t.Errorf("format:\n%s", out)
	}
	sets, warns := ParseDomains("f", []byte(out))
	if len(warns) != 0 || !reflect.DeepEqual(sets, [][]string{certs[0].Names, certs[1].Names}) {
		t.Errorf("round trip: %q %q", sets, warns)
	}
}
