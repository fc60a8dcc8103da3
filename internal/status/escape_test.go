package status

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/portico/portico/internal/certs"
	"github.com/portico/portico/internal/store"
)

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"web.test", "web.test"},
		{"bücher.example ☃", "bücher.example ☃"},
		{"a\\b", "a\\b"},
		{"\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"\x1b]0;title\x07", `\x1b]0;title\x07`},
		{"line\r\nFAKE", `line\r\nFAKE`},
		{"tab\there", `tab\there`},
		{"nul\x00del\x7f", `nul\x00del\x7f`},
		{"c1 \u009b31m \u0085", `c1 \u009b31m \u0085`},
		{"bidi \u202egnp.exe\u202c", `bidi \u202egnp.exe\u202c`},
		{"isolates \u2066x\u2069 marks \u200e\u200f\u061c", `isolates \u2066x\u2069 marks \u200e\u200f\u061c`},
		{"zero width \u200b\u200d bom \ufeff soft\u00adhyphen", `zero width \u200b\u200d bom \ufeff soft\u00adhyphen`},
		{"separators \u2028\u2029", `separators \u2028\u2029`},
		{"tag \U000e0001", `tag \U000e0001`},
		{"invalid \xff\xfe utf8", `invalid \xff\xfe utf8`},
		{"cut rune \xe2\x80", `cut rune \xe2\x80`},
	} {
		if got := Escape(tc.in); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWriteJSONEscapesWhatEncodingJSONLeavesRaw(t *testing.T) {
	name := "x\x1b[2J\u009b\u202e\u2066\U000e0001\x7f\u2028"
	r := Report{
		Containers: []Container{{Name: name}},
		Nginx:      []store.NginxStatus{{Instance: "n", Error: "GET https://u:pw@h/?t=tok"}},
		Certs:      []certs.CertStatus{{Primary: "p", Error: "POST http://h/?key=tok"}},
		Store:      []string{"key \"x\": at ftp://u:tok@h/"},
	}
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, bad := range []string{"\x1b", "\u009b", "\u202e", "\u2066", "\U000e0001", "\x7f", "\u2028", "tok", ":pw@"} {
		if strings.Contains(out, bad) {
			t.Errorf("JSON holds %q:\n%s", bad, out)
		}
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not parse: %v\n%s", err, out)
	}
	if back.Containers[0].Name != name {
		t.Errorf("name %q came back as %q", name, back.Containers[0].Name)
	}
	if r.Nginx[0].Error != "GET https://u:pw@h/?t=tok" {
		t.Error("WriteJSON modified the report it was given")
	}
}
