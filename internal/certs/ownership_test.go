package certs

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/certs/localca"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
)

// TestForeignNamesCannotTakeOverACertificate reproduces issue 8's class 3
// attack on the real stage and an embedded etcd, with records written
// straight into etcd: container A routes app.example.com (ACME, redirect);
// other containers name app.example.com in their certificate names, or
// route it alongside a local name. A's certificate keeps its names and its
// ACME issuer, and no other certificate names app.example.com.
func TestForeignNamesCannotTakeOverACertificate(t *testing.T) {
	e := storetest.Start(t)
	local := newCounting(localca.New(e.Client, testKeys, localca.Options{}))
	// The ACME issuer is played by a second real local CA (its own root,
	// permitted to certify example.com).
	acme := newCounting(localca.New(e.Client, store.NewKeys("/portico-test-acme"), localca.Options{Domains: []string{"example.com"}}))
	put := func(node, id string, labels, env map[string]string) {
		t.Helper()
		c := store.Container{ID: id, Name: "c" + id, Host: node, State: "running", Labels: labels, Env: env,
			Networks: map[string]store.Network{"n": {IPv4: "172.30.0." + id}}}
		if _, err := store.PutJSON(context.Background(), e.Client, testKeys.Container(node, id), c); err != nil {
			t.Fatal(err)
		}
	}
	put("h1", "1", map[string]string{routing.LabelVhost: "app.example.com", routing.LabelPort: "80", routing.LabelHTTPS: "redirect"}, nil)
	startStage(t, e.Client, Config{ACME: acme, Local: local, CheckInterval: 50 * time.Millisecond})
	waitFor(t, "A's bundle", func() bool { _, ok := bundleFor(t, e.Client, "app.example.com"); return ok })

	// B, on another Docker host, routes b.test and names A's vhost first in
	// its certificate names.
	put("h2", "2", map[string]string{routing.LabelVhost: "b.test", routing.LabelPort: "80"},
		map[string]string{routing.EnvLetsEncryptHost: "app.example.com,b.test"})
	// C lists A's vhost as a SAN of its own certificate.
	put("h2", "3", map[string]string{routing.LabelVhost: "c.example.com", routing.LabelPort: "80"},
		map[string]string{routing.EnvACMEHost: "c.example.com app.example.com"})
	// D claims A's vhost with conflicting settings (rejected) plus a local name.
	put("h2", "4", map[string]string{routing.LabelVhost: "app.example.com, d.test", routing.LabelPort: "80", routing.LabelHTTPS: "both"}, nil)
	// E is an accepted replica of A (identical settings) that adds a local name.
	put("h2", "5", map[string]string{routing.LabelVhost: "app.example.com, e.test", routing.LabelPort: "80", routing.LabelHTTPS: "redirect"}, nil)
	// The sentinel, written last: once it is wanted, every record above was planned.
	put("h2", "6", map[string]string{routing.LabelVhost: "sentinel.test", routing.LabelPort: "80"}, nil)

	var wanted []store.WantedCert
	waitFor(t, "sentinel certificate", func() bool { _, ok := bundleFor(t, e.Client, "sentinel.test"); return ok })
	getJSON(t, e.Client, testKeys.CertsWanted(), &wanted)
	for _, w := range wanted {
		if w.Primary == "app.example.com" {
			if !slices.Equal(w.Names, []string{"app.example.com"}) || w.Issuer != store.IssuerACME {
				t.Errorf("A's wanted certificate changed: %+v", w)
			}
		} else if slices.Contains(w.Names, "app.example.com") {
			t.Errorf("certificate %q names A's vhost: %+v", w.Primary, w)
		}
	}
	if !slices.ContainsFunc(wanted, func(w store.WantedCert) bool { return w.Primary == "e.test" && w.Issuer == store.IssuerLocal }) {
		t.Errorf("the replica's own local name has no certificate of its own: %+v", wanted)
	}
	waitFor(t, "e.test certificate", func() bool { _, ok := bundleFor(t, e.Client, "e.test"); return ok })
	b, _ := bundleFor(t, e.Client, "app.example.com")
	if b.Issuer != store.IssuerACME || !slices.Equal(b.Names, []string{"app.example.com"}) {
		t.Errorf("A's bundle: issuer %q names %q", b.Issuer, b.Names)
	}
	if n := acme.count("app.example.com"); n != 1 {
		t.Errorf("A's certificate ordered %d times, want 1", n)
	}
	local.mu.Lock()
	defer local.mu.Unlock()
	for k := range local.n {
		if slices.Contains(strings.Fields(k), "app.example.com") {
			t.Errorf("local CA asked for %q", k)
		}
	}
}
