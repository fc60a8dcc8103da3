package status

import (
	"strings"
	"testing"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// TestBuildEntriesOwnership: status decides a contested vhost like the
// stages, by the records' create revisions, and shows rejected records.
func TestBuildEntriesOwnership(t *testing.T) {
	keys := store.NewKeys("/portico")
	entry := func(c store.Container, createRev int64) store.Entry {
		b, err := store.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		return store.Entry{Value: b, ModRevision: createRev + 100, CreateRevision: createRev}
	}
	nets := map[string]store.Network{"proxy": {IPv4: "172.18.0.2"}}
	owner := store.Container{ID: "0wner", Name: "zzz-owner", Host: "h1", State: "running", Networks: nets,
		Labels: map[string]string{"portico.vhost": "a.test"}}
	intruder := store.Container{ID: "1ntruder", Name: "aaa-intruder", Host: "h1", State: "running", Networks: nets,
		Labels: map[string]string{"portico.vhost": "a.test", "portico.https": "off"}}
	big := store.Container{ID: "b1g", Name: "big", Host: "h1", State: "running", Rejected: "record of 70000 bytes exceeds the reporter's cap of 65536 bytes"}
	r := BuildEntries(map[string]store.Entry{
		keys.Container("h1", owner.ID):    entry(owner, 5),
		keys.Container("h1", intruder.ID): entry(intruder, 9),
		keys.Container("h1", big.ID):      entry(big, 12),
	}, keys, routing.Options{Network: "proxy"})
	if len(r.Routes) != 1 || r.Routes[0].HTTPS != routing.HTTPSAuto || strings.Join(r.Routes[0].Containers, ",") != "zzz-owner" {
		t.Errorf("routes %+v, want a.test owned by zzz-owner", r.Routes)
	}
	var intruderErr, bigErr bool
	for _, p := range r.Problems {
		if p.Container == "aaa-intruder" && p.Severity == routing.SeverityError && strings.Contains(p.Message, `"zzz-owner"`) {
			intruderErr = true
		}
		if p.Container == "big" && p.Severity == routing.SeverityError && strings.Contains(p.Message, "exceeds the reporter's cap") {
			bigErr = true
		}
	}
	if !intruderErr || !bigErr {
		t.Errorf("problems %+v: want an error on aaa-intruder naming zzz-owner and one on big", r.Problems)
	}
}
