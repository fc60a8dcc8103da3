package localca_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"testing"
	"time"

	"github.com/portico/portico/internal/certs/localca"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
)

func TestRacingStagesAgreeOnOneRootAndLeavesVerify(t *testing.T) {
	e := storetest.Start(t)
	keys := store.NewKeys("/t")
	ctx := context.Background()
	if _, ok, err := localca.Load(ctx, e.Client, keys); err != nil || ok {
		t.Fatalf("Load before creation: ok=%v err=%v", ok, err)
	}

	cas := make([]*localca.CA, 4)
	roots := make([]string, len(cas))
	var wg sync.WaitGroup
	for i := range cas {
		cas[i] = localca.New(e.Client, keys, localca.Options{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if roots[i], err = cas[i].RootPEM(ctx); err != nil {
				t.Errorf("RootPEM: %v", err)
			}
		}()
	}
	wg.Wait()
	for i := range roots {
		if roots[i] != roots[0] || roots[i] == "" {
			t.Fatalf("CA %d has a different root", i)
		}
	}
	stored, ok, err := localca.Load(ctx, e.Client, keys)
	if err != nil || !ok || stored != roots[0] {
		t.Fatalf("Load: ok=%v err=%v same=%v", ok, err, stored == roots[0])
	}

	names := []string{"app.test", "www.app.test"}
	b, err := cas[1].Obtain(ctx, names)
	if err != nil {
		t.Fatal(err)
	}
	if b.Issuer != store.IssuerLocal || b.Primary != "app.test" || b.Serial == "" || b.ChainPEM != "" {
		t.Errorf("bundle fields: %+v", b)
	}
	if life := b.NotAfter.Sub(b.NotBefore); life < localca.DefaultValidity || life > localca.DefaultValidity+2*time.Hour {
		t.Errorf("validity %v", life)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(roots[0]))
	blk, _ := pem.Decode([]byte(b.CertPEM))
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: pool}); err != nil {
			t.Errorf("verify %s: %v", n, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other.test", Roots: pool}); err == nil {
		t.Error("leaf verified for a name it does not hold")
	}
	if _, err := cas[0].Obtain(ctx, nil); err == nil {
		t.Error("Obtain with no names succeeded")
	}
}
