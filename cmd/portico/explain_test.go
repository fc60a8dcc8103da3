package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/portico/portico/internal/explain"
	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
)

// TestExplainCommand runs `portico explain` against a real etcd holding
// records written straight in: the host goes before or after the flags,
// the exit status says whether the name is served, JSON parses, and a
// hostile record prints escaped.
func TestExplainCommand(t *testing.T) {
	e := storetest.Start(t)
	keys := store.NewKeys("/x")
	ctx := context.Background()
	put := func(key string, v any) {
		t.Helper()
		if _, err := store.PutJSON(ctx, e.Client, key, v); err != nil {
			t.Fatal(err)
		}
	}
	web := store.Container{ID: "w1", Name: "web", Host: "h1", State: "running", Labels: map[string]string{routing.LabelVhost: "web.test"},
		Networks: map[string]store.Network{"proxy": {IPv4: "172.31.255.7"}}}
	put(keys.Container("h1", "w1"), web)
	put(keys.Container("h1", "e1"), store.Container{ID: "e1", Name: "evil\x1b]0;owned\x07", Host: "h1", State: "running\x1b[2J",
		Labels: map[string]string{routing.LabelVhost: "web.test", routing.LabelPort: "x\u202e"}})
	routes := routing.Build([]store.Container{web}, routing.Options{Network: "proxy"}).Routes
	put(keys.NginxStatus("n1"), store.NginxStatus{Instance: "n1", Applied: "abc", Routes: 1, AppliedRoutes: render.RouteDigests(routes)})

	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := cmdExplain(ctx, args, envOf(map[string]string{"PORTICO_NETWORK": "proxy"}), &out, &errOut)
		return out.String(), err
	}
	base := []string{"--etcd-endpoints", e.Endpoint, "--prefix", "/x", "--nginx-binary", "/nonexistent/nginx"}
	for _, args := range [][]string{append(append([]string{}, base...), "web.test"), append([]string{"web.test"}, base...)} {
		out, err := run(args...)
		if err != nil {
			t.Fatalf("explain %v: %v\n%s", args, err, out)
		}
		if !strings.HasPrefix(out, "web.test is served over HTTP only, applied by n1") {
			t.Errorf("explain %v:\n%s", args, out)
		}
		for _, raw := range []string{"\x1b", "\x07", "\u202e"} {
			if strings.Contains(out, raw) {
				t.Errorf("output holds %q", raw)
			}
		}
		if !strings.Contains(out, `evil\x1b]0;owned\x07`) {
			t.Errorf("the rejected claim is not shown escaped:\n%s", out)
		}
	}
	out, err := run(append([]string{"--json", "nobody.test"}, base...)...)
	if err == nil || !strings.Contains(err.Error(), "nobody.test is not served") {
		t.Errorf("unclaimed name: err %v", err)
	}
	var x explain.Explanation
	if jerr := json.Unmarshal([]byte(out), &x); jerr != nil || x.Served || !strings.Contains(x.Summary, "no claim") {
		t.Errorf("json: %v %+v\n%s", jerr, x, out)
	}
	if _, err := run(base...); err == nil || !strings.Contains(err.Error(), "which host?") {
		t.Errorf("no host: err %v", err)
	}
}
