package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/portico/portico/internal/certs/localca"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
)

// TestStatusEscapesAndRedactsHostileRecords writes records carrying terminal
// escapes, bidi overrides, injected line breaks and URL credentials straight
// into a real etcd, then runs `portico status` (text and --json) against it:
// nothing reaches the terminal raw, no secret is printed, and JSON keeps the
// values intact (escaped, not dropped). Issue 8, class 6.
func TestStatusEscapesAndRedactsHostileRecords(t *testing.T) {
	e := storetest.Start(t)
	keys := store.NewKeys("/portico")
	ctx := context.Background()
	const secret = "s3cr3t-token"
	hostileName := "web\x1b]0;owned\x07\r\nFAKE LINE\u202egnp.exe\u009b31m\x7f"
	put := func(key string, v any) {
		t.Helper()
		if _, err := store.PutJSON(ctx, e.Client, key, v); err != nil {
			t.Fatal(err)
		}
	}
	put(keys.Container("h1", "abc"), store.Container{ID: "abc", Name: hostileName, Host: "h1", State: "running\x1b[2J",
		Health: "healthy\u2066", Labels: map[string]string{routing.LabelVhost: "web.test", routing.LabelPort: "80"},
		Networks: map[string]store.Network{"n": {IPv4: "172.30.0.2"}}})
	put(keys.Container("h1", "bad"), store.Container{ID: "bad", Name: "bad", Host: "h1", State: "running",
		Labels: map[string]string{routing.LabelVhost: "x\x1b[31m.test\nFAKE LINE", routing.LabelPort: "80"}})
	put(keys.NginxStatus("n1\x1b[1m"), store.NginxStatus{Instance: "n1\x1b[1m", Routes: 1,
		Error:       "nginx -t failed\r\nFAKE LINE \x1b[2J at http://admin:" + secret + "@127.0.0.1:9/x?token=" + secret,
		ErrorRoutes: []string{"web.test\u202e"}})
	put(keys.CertState("web.test"), store.CertState{Primary: "web.test", Names: []string{"web.test"}, Issuer: "acme\x1b[5m",
		LastError: `httpreq: [request: POST https://user:` + secret + `@dns.example/present?key=` + secret + "] \x1b[31m\u202eFAKE\nFAKE LINE"})
	if _, err := e.Client.Put(ctx, keys.Container("h1", "junk\x1b[2J"), "{not json \x1b[2J"); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		args = append([]string{"--etcd-endpoints", e.Endpoint, "--prefix", "/portico"}, args...)
		// The hostile records are errors: status prints them and exits 3.
		if err := cmdStatus(ctx, args, envOf(nil), &out, &errOut); exitCode(err) != exitProblems {
			t.Fatalf("status %v: %v (exit code %d, want %d)\n%s", args, err, exitCode(err), exitProblems, errOut.String())
		}
		return out.String()
	}
	for _, mode := range []string{"text", "json"} {
		var out string
		if mode == "json" {
			out = run("--json")
		} else {
			out = run()
		}
		if testing.Verbose() {
			t.Logf("%s output:\n%s", mode, out)
		}
		for _, bad := range []string{"\x1b", "\r", "\x07", "\x7f", "\u202e", "\u2066", "\u009b", secret} {
			if strings.Contains(out, bad) {
				t.Errorf("%s output holds %q:\n%s", mode, bad, out)
			}
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "FAKE") {
				t.Errorf("%s output has an injected line %q", mode, line)
			}
		}
		if !strings.Contains(out, "REDACTED") || !strings.Contains(out, "127.0.0.1:9/x") {
			t.Errorf("%s output lacks the redacted error:\n%s", mode, out)
		}
		if mode == "text" && !strings.Contains(out, `web\x1b]0;owned\x07\r\nFAKE LINE\u202egnp.exe\u009b31m\x7f`) {
			t.Errorf("text output lacks the escaped name:\n%s", out)
		}
		if mode == "json" {
			var rep struct {
				Containers []struct{ Name string } `json:"containers"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("json output does not parse: %v\n%s", err, out)
			}
			found := false
			for _, c := range rep.Containers {
				found = found || c.Name == hostileName
			}
			if !found {
				t.Errorf("json output lost the container's real name: %+v", rep.Containers)
			}
		}
	}
}

// TestStatusLocalCACertPrintsOnlyTheCertificate: a CA record written
// straight into etcd with escapes around its PEM prints as the bare,
// re-encoded certificate.
func TestStatusLocalCACertPrintsOnlyTheCertificate(t *testing.T) {
	e := storetest.Start(t)
	keys := store.NewKeys("/portico")
	ctx := context.Background()
	root, err := localca.New(e.Client, keys, localca.Options{}).RootPEM(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.Client.Get(ctx, keys.LocalCA())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatal(err)
	}
	var rec localca.Record
	if err := store.Decode(keys.LocalCA(), resp.Kvs[0].Value, &rec); err != nil {
		t.Fatal(err)
	}
	rec.CertPEM = "\x1b]0;owned\x07\x1b[2J\n" + rec.CertPEM + "\x1b[31mtrailing\n"
	if _, err := store.PutJSON(ctx, e.Client, keys.LocalCA(), rec); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := cmdStatus(ctx, []string{"--etcd-endpoints", e.Endpoint, "--local-ca-cert"}, envOf(nil), &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if out.String() != root {
		t.Errorf("printed %q, want the bare certificate %q", out.String(), root)
	}
}
