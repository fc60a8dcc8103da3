package status

import (
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// Gather reads the certificates from the same snapshot as the rest: one
// read of the prefix serves both `portico status` and the web page.
func TestGatherIncludesCertificates(t *testing.T) {
	keys := store.NewKeys("/portico")
	wanted, err := store.Encode([]store.WantedCert{{Primary: "web.test", Names: []string{"web.test"}, Issuer: "local"}})
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string]store.Entry{
		keys.CertsWanted():         {Value: wanted},
		keys.CertState("bad.test"): {Value: []byte("{not json")},
		keys.Certs() + "locks/x":   {Value: []byte("ignored")},
	}
	r := Gather(entries, keys, routing.Options{}, time.Now())
	if len(r.Certs) != 1 || r.Certs[0].Primary != "web.test" || r.Certs[0].Issuer != "local" {
		t.Errorf("certs: %+v", r.Certs)
	}
	if len(r.Store) != 1 || !strings.Contains(r.Store[0], keys.CertState("bad.test")) {
		t.Errorf("unreadable records: %q, want the bad state's key", r.Store)
	}
	if r.Errors() != 1 {
		t.Errorf("Errors() = %d, want 1", r.Errors())
	}
}
