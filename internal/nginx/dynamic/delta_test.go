package dynamic

import (
	"strconv"
	"strings"
	"testing"
)

// Delta sends what changed between two tables and nothing else: set lines
// for new and changed routes and paths, deletions for those gone, the
// certificates to drop, and the meta lines; the same change in any order
// gives the same bytes.
func TestDelta(t *testing.T) {
	peers := []string{"10.0.0.2:80"}
	base := Table{Routes: []Route{
		{Host: "a.test", Scheme: "http", Peers: peers},
		{Host: "b.test", Scheme: "http", Peers: peers, Options: []Option{{OptionPathList, "/api"}}},
		{Host: "b.test", Path: "/api", Scheme: "http", Peers: peers},
		{Host: "gone.test", Scheme: "http"},
	}}
	old, err := base.EncodeTable()
	if err != nil {
		t.Fatal(err)
	}
	next := Table{Default: "a.test", Routes: []Route{
		{Host: "a.test", Scheme: "http", Peers: peers},                          // unchanged
		{Host: "b.test", Scheme: "http", Peers: []string{"10.0.0.3:80"}},        // changed, no paths now
		{Host: "*.new.test", Scheme: "https", Peers: []string{"[fd00::1]:443"}}, // new
	}}
	enc, err := next.EncodeTable()
	if err != nil {
		t.Fatal(err)
	}
	body, n := Delta(old, enc, []string{"ffffffffffffffffffffffffffffffff", "00000000000000000000000000000000"})
	want := "portico-delta 1\n" +
		"base\t" + old.Version + "\n" +
		"version\t" + enc.Version + "\n" +
		"redirect_port\t\n" +
		"default\ta.test\n" +
		"route\t*.new.test\thttps\t0\t0\t\t[fd00::1]:443\n" +
		"route\tb.test\thttp\t0\t0\t\t10.0.0.3:80\n" +
		"delpath\tb.test\t/api\n" +
		"delroute\tgone.test\n" +
		"dropcert\t00000000000000000000000000000000\n" +
		"dropcert\tffffffffffffffffffffffffffffffff\n"
	if string(body) != want {
		t.Errorf("delta:\n%s\nwant:\n%s", body, want)
	}
	if n != 4 {
		t.Errorf("n = %d, want 4", n)
	}
	// The version is the whole table's, as Encode gives it.
	if _, v, _ := next.Encode(); v != enc.Version {
		t.Errorf("version %s, Encode's %s", enc.Version, v)
	}
	// No change: only the header and meta lines.
	same, n := Delta(enc, enc, nil)
	if n != 0 || strings.Count(string(same), "\n") != 5 {
		t.Errorf("delta of no change: %d lines changed:\n%s", n, same)
	}
}

// A delta's size is its change's: one route more in a table of 10,000
// sends one line.
func TestDeltaSizeIsTheChanges(t *testing.T) {
	tab := Table{}
	for i := range 10000 {
		tab.Routes = append(tab.Routes, Route{Host: strings.Repeat("x", i%7) + string(rune('a'+i%26)) + ".test" + strconv.Itoa(i), Scheme: "http", Peers: []string{"10.0.0.2:80"}})
	}
	old, err := tab.EncodeTable()
	if err != nil {
		t.Fatal(err)
	}
	tab.Routes = append(tab.Routes, Route{Host: "one-more.test", Scheme: "http", Peers: []string{"10.0.0.9:80"}})
	enc, err := tab.EncodeTable()
	if err != nil {
		t.Fatal(err)
	}
	body, n := Delta(old, enc, nil)
	if n != 1 || len(body) > 300 {
		t.Errorf("%d lines, %d bytes for one new route (whole table %d bytes)", n, len(body), len(enc.Body))
	}
}
