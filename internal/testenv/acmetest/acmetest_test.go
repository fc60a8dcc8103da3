package acmetest_test

import (
	"context"
	"encoding/pem"
	"testing"

	"github.com/miekg/dns"

	"github.com/portico/portico/internal/testenv/acmetest"
)

// TestStart checks that BIND serves the zone and accepts TSIG-signed
// updates, and that Pebble serves its directory and a root.
func TestStart(t *testing.T) {
	env := acmetest.Start(t, acmetest.Options{})
	if r := env.Query(t, "www."+env.Zone, dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("A www.%s: %v", env.Zone, r)
	}
	if blk, _ := pem.Decode(env.Root(t)); blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("root is not a PEM certificate")
	}
	ctx := context.Background()
	p := env.DNSProvider(t)
	if err := p.Present(ctx, "x."+env.Zone, "tok", "keyauth"); err != nil {
		t.Fatalf("present: %v", err)
	}
	if r := env.Query(t, "_acme-challenge.x."+env.Zone, dns.TypeTXT); len(r.Answer) != 1 {
		t.Fatalf("TXT after present: %v", r)
	}
	if err := p.CleanUp(ctx, "x."+env.Zone, "tok", "keyauth"); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	if r := env.Query(t, "_acme-challenge.x."+env.Zone, dns.TypeTXT); len(r.Answer) != 0 {
		t.Fatalf("TXT after cleanup: %v", r)
	}
	if err := env.BadDNSProvider(t).Present(ctx, "x."+env.Zone, "tok", "keyauth"); err == nil {
		t.Fatal("present with a wrong TSIG secret succeeded")
	}
}

func TestMain(m *testing.M) {
	acmetest.PinLegoResolver()
	m.Run()
}
