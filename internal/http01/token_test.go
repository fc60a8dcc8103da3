package http01

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

const (
	tok   = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
	thumb = "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
)

func rec(token, domain string) Record {
	return Record{Token: token, KeyAuth: token + "." + thumb, Domain: domain}
}

func TestValidate(t *testing.T) {
	good := rec(tok, "www.example.com")
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", MaxTokenLen+1)
	for name, r := range map[string]Record{
		"short token":        rec("abc", "a.example"),
		"long token":         rec(long, "a.example"),
		"slash in token":     rec(strings.Repeat("a", 30)+"/../x", "a.example"),
		"padding":            rec(strings.Repeat("a", 30)+"==", "a.example"),
		"newline in token":   rec(strings.Repeat("a", 30)+"\n", "a.example"),
		"key auth of other":  {Token: tok, KeyAuth: "x" + tok[1:] + "." + thumb, Domain: "a.example"},
		"short thumbprint":   {Token: tok, KeyAuth: tok + ".abc", Domain: "a.example"},
		"thumbprint newline": {Token: tok, KeyAuth: tok + "." + thumb[1:] + "\n", Domain: "a.example"},
		"trailing data":      {Token: tok, KeyAuth: tok + "." + thumb + "x", Domain: "a.example"},
		"wildcard domain":    rec(tok, "*.example.com"),
		"upper-case domain":  rec(tok, "WWW.example.com"),
		"empty domain":       rec(tok, ""),
		"domain with space":  rec(tok, "a b.example"),
		"domain with slash":  rec(tok, "a/b.example"),
		"empty label":        rec(tok, "a..example"),
		"hyphen label":       rec(tok, "-a.example"),
		"long label":         rec(tok, strings.Repeat("a", 64)+".example"),
		"trailing dot":       rec(tok, "a.example."),
	} {
		if err := r.Validate(); err == nil {
			t.Errorf("%s: %+v accepted", name, r)
		}
	}
}

func TestDecode(t *testing.T) {
	b, _ := rec(tok, "a.example").Encode()
	if r, err := Decode(tok, b); err != nil || r.Domain != "a.example" {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := Decode("other"+tok, b); err == nil || !strings.Contains(err.Error(), "not its key's") {
		t.Errorf("record under another token's key: %v", err)
	}
	big, _ := json.Marshal(map[string]string{"token": tok, "key_authorization": tok + "." + thumb, "domain": "a.example", "x": strings.Repeat("x", MaxRecordBytes)})
	if _, err := Decode(tok, big); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("oversized: %v", err)
	}
	if _, err := Decode(tok, []byte("{")); err == nil {
		t.Error("bad JSON accepted")
	}
}

func TestSelectServesOnlyOwnedValidRecords(t *testing.T) {
	enc := func(r Record) []byte { b, _ := json.Marshal(r); return b }
	t2 := strings.Repeat("B", 43)
	t3 := strings.Repeat("C", 43)
	stored := []Stored{
		{Token: t3, Value: enc(rec(t3, "victim.example"))},    // not owned
		{Token: tok, Value: enc(rec(tok, "www.example.com"))}, // owned
		{Token: t2, Value: enc(Record{Token: t2, KeyAuth: "<script>", Domain: "www.example.com"})},
	}
	got, problems := Select(stored, map[string]bool{"www.example.com": true})
	if len(got) != 1 || got[0].Token != tok {
		t.Fatalf("served %+v", got)
	}
	if len(problems) != 2 || !strings.Contains(fmt.Sprint(problems), `domain "victim.example" is not a name Portico certifies`) {
		t.Errorf("problems %v", problems)
	}
}

func TestSelectBoundsCount(t *testing.T) {
	var stored []Stored
	owned := map[string]bool{"a.example": true}
	for i := range MaxTokens + 5 {
		tk := fmt.Sprintf("%043d", i)
		b, _ := json.Marshal(rec(tk, "a.example"))
		stored = append(stored, Stored{Token: tk, Value: b})
	}
	got, problems := Select(stored, owned)
	if len(got) != MaxTokens || len(problems) != 5 {
		t.Fatalf("served %d, problems %d", len(got), len(problems))
	}
}

func FuzzDecode(f *testing.F) {
	b, _ := rec(tok, "a.example").Encode()
	f.Add(tok, b)
	f.Add("x", []byte(`{"token":"x"}`))
	f.Fuzz(func(t *testing.T, token string, value []byte) {
		r, err := Decode(token, value)
		if err != nil {
			return
		}
		// Whatever is accepted is safe in a URL path, a file name, a Lua
		// table line and an HTTP body.
		for _, s := range []string{r.Token, r.KeyAuth, r.Domain} {
			if strings.ContainsAny(s, "/\\\t\n\r \x00\"'$;{}") || len(s) > 253 {
				t.Fatalf("accepted %q", s)
			}
		}
	})
}
