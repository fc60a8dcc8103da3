package routing

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"

	"github.com/portico/portico/internal/store"
)

// A Memo's builds equal Build's on the same records, through changes,
// removals, records with problems and a host address that becomes local.
func TestMemoBuildsAsBuild(t *testing.T) {
	local := map[netip.Addr]bool{}
	opts := Options{Network: "proxy", LocalAddr: func(a netip.Addr) bool { return local[a] }}
	cs := synthetic(300)
	for i := range cs {
		cs[i].ModRevision = int64(i + 1)
		cs[i].CreateRevision = int64(i + 1)
	}
	m := NewMemo(opts)
	check := func(step string, cs []store.Container) {
		t.Helper()
		got, want := m.Build(cs), Build(cs, opts)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: memo build differs from Build", step)
		}
	}
	check("first", cs)
	if m.Len() == 0 {
		t.Fatal("nothing remembered")
	}
	check("again", cs)

	// One record changes its vhost (a new revision), one is removed.
	cs[7].Labels = map[string]string{LabelVhost: "changed.example.com"}
	cs[7].ModRevision = 1000
	cs = append(cs[:20], cs[21:]...)
	check("changed", cs)

	// Same revision, other content: the memo trusts the revision (etcd's
	// promise), so only a new revision is a change. Shown here so the
	// contract is explicit.
	before := m.Build(cs)
	cs[8].Labels = map[string]string{LabelVhost: "ignored.example.com"}
	if got := m.Build(cs); !reflect.DeepEqual(got, before) {
		t.Fatal("a record of the same revision was parsed again")
	}
	cs[8].ModRevision = 1001
	check("new revision", cs)

	// The host gains the address of a remembered service: refused now.
	a := netip.MustParseAddr(fmt.Sprintf("10.0.0.%d", 10|1))
	local[a] = true
	check("address now local", cs)
	delete(local, a)
	check("address no longer local", cs)

	// Records of unknown revision are always parsed.
	for i := range cs {
		cs[i].ModRevision = 0
	}
	check("no revisions", cs)
	if m.Len() != 0 {
		t.Fatalf("%d parses remembered for records of unknown revision", m.Len())
	}
}

func BenchmarkMemoBuild(b *testing.B) {
	cs := synthetic(10000)
	for i := range cs {
		cs[i].ModRevision = int64(i + 1)
	}
	m := NewMemo(Options{Network: "proxy"})
	m.Build(cs)
	b.ReportAllocs()
	for b.Loop() {
		cs[5].ModRevision++
		m.Build(cs)
	}
}
