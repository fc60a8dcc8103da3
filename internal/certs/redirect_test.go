package certs

import (
	"reflect"
	"testing"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// portico.redirect-from names are on the container's certificate, after
// its vhosts (Hosts[0] stays the subject), when routing accepted their
// claim; a name another container claimed first is not.
func TestServiceNamesRedirectFrom(t *testing.T) {
	rec := func(id, name string, rev int64, labels map[string]string) store.Container {
		labels[routing.LabelPort] = "80"
		return store.Container{ID: id, Name: name, Host: "h", State: "running", Labels: labels, CreateRevision: rev}
	}
	cs := []store.Container{
		rec("1", "web", 2, map[string]string{routing.LabelVhost: "example.com", routing.LabelRedirectFrom: "www.example.com, taken.example.com"}),
		rec("2", "other", 1, map[string]string{routing.LabelVhost: "taken.example.com"}),
	}
	sets := ServiceNames(routing.Build(cs, routing.Options{}))
	got := map[string]NameSet{}
	for _, ns := range sets {
		got[ns.Owner] = ns
	}
	web := got[`container "web" on node "h"`]
	if !reflect.DeepEqual(web.Names, []string{"example.com", "www.example.com", "taken.example.com"}) ||
		!reflect.DeepEqual(web.Routed, []string{"example.com", "www.example.com"}) {
		t.Errorf("web: %+v", web)
	}
	certs, _ := Plan(sets, PlanOptions{})
	var primary store.WantedCert
	for _, c := range certs {
		if c.Primary == "example.com" {
			primary = c
		}
	}
	if !reflect.DeepEqual(primary.Names, []string{"example.com", "www.example.com"}) {
		t.Errorf("certificate %+v", primary)
	}
}
