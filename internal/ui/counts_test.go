package ui_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/status"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/ui"
)

// TestCountsAgree: `portico status`'s exit (Errors, which its stderr
// message quotes), its text, its --json counts and the operators' page
// count the same errors, from one snapshot holding one of every kind: a
// rejected container, an unreadable record, a failed nginx apply, a
// failing certificate a container needs, and the last error of a
// certificate no container needs (history: not an error).
func TestCountsAgree(t *testing.T) {
	t.Parallel()
	keys := store.NewKeys("/portico")
	now := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	enc := func(v any) store.Entry {
		b, err := store.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		return store.Entry{Value: b}
	}
	web := store.Container{ID: "aaaaaaaaaaaaaaaa", Name: "web", Host: "h1", State: "running",
		Labels: map[string]string{"portico.vhost": "web.test"}, Networks: map[string]store.Network{"proxy": {IPv4: "172.18.0.2"}}}
	bad := store.Container{ID: "bbbbbbbbbbbbbbbb", Name: "bad", Host: "h1", State: "running",
		Labels: map[string]string{"portico.vhost": "x.test", "portico.port": "abc"}, Networks: map[string]store.Network{"proxy": {IPv4: "172.18.0.3"}}}
	entries := map[string]store.Entry{
		keys.Container("h1", web.ID): enc(web),
		keys.Container("h1", bad.ID): enc(bad),
		keys.Container("h1", "junk"): {Value: []byte("{not json")},
		keys.NginxStatus("n1"):       enc(store.NginxStatus{Instance: "n1", Error: "nginx -t: boom"}),
		keys.CertsWanted():           enc([]store.WantedCert{{Primary: "web.test", Names: []string{"web.test"}, Issuer: "local"}}),
		keys.CertState("web.test"):   enc(store.CertState{Primary: "web.test", LastError: "order failed", LastErrorAt: now.Add(-time.Hour)}),
		keys.CertState("gone.test"):  enc(store.CertState{Primary: "gone.test", Names: []string{"gone.test"}, LastError: "order failed", LastErrorAt: now.Add(-24 * time.Hour)}),
	}
	rep := status.Gather(entries, keys, routing.Options{Network: "proxy"}, now)
	const want = 4 // the port label, the junk record, nginx, web.test's certificate
	if got := rep.Errors(); got != want {
		t.Fatalf("Errors() = %d, want %d: %+v", got, want, rep)
	}

	var text bytes.Buffer
	if err := rep.WriteText(&text, now); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^(\d+) error\(s\), (\d+) warning\(s\); 1 past certificate error`).FindStringSubmatch(text.String())
	if m == nil {
		t.Fatalf("text has no summary line with the past certificate error:\n%s", text.String())
	}
	textErrors, _ := strconv.Atoi(m[1])

	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var jr struct {
		Counts map[string]int `json:"counts"`
	}
	if err := json.Unmarshal(js.Bytes(), &jr); err != nil {
		t.Fatal(err)
	}

	b, err := ui.Encode(rep, 1, true, nil, now, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var snap ui.Snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		t.Fatal(err)
	}
	page := report(t, snap)

	if textErrors != want || jr.Counts["errors"] != want || page.Counts["errors"] != want {
		t.Errorf("errors: exit %d, text %d, --json %d, page %d; want %d each", rep.Errors(), textErrors, jr.Counts["errors"], page.Counts["errors"], want)
	}
	if jr.Counts["past_errors"] != 1 || page.Counts["past_errors"] != 1 {
		t.Errorf("past_errors: --json %d, page %d; want 1", jr.Counts["past_errors"], page.Counts["past_errors"])
	}
}
