package certs

import (
	"reflect"
	"slices"
	"testing"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

func TestPlan(t *testing.T) {
	acme, local := store.IssuerACME, store.IssuerLocal
	tests := []struct {
		name  string
		sets  [][]string
		opts  PlanOptions
		want  []store.WantedCert
		warns int
	}{
		{name: "empty", sets: nil, want: nil},
		{name: "one set, SANs sorted",
			sets: [][]string{{"b.example.com", "z.example.com", "a.example.com"}},
			want: []store.WantedCert{{Primary: "b.example.com", Names: []string{"b.example.com", "a.example.com", "z.example.com"}, Issuer: acme}}},
		{name: "identical sets collapse",
			sets: [][]string{{"a.example.com", "b.example.com"}, {"a.example.com", "b.example.com"}},
			want: []store.WantedCert{{Primary: "a.example.com", Names: []string{"a.example.com", "b.example.com"}, Issuer: acme}}},
		{name: "identical name sets, different subjects: first subject wins",
			sets: [][]string{{"b.example.com", "a.example.com"}, {"a.example.com", "b.example.com"}},
			want: []store.WantedCert{{Primary: "a.example.com", Names: []string{"a.example.com", "b.example.com"}, Issuer: acme}}},
		{name: "subset with same subject collapses into superset",
			sets: [][]string{{"a.example.com"}, {"a.example.com", "b.example.com"}},
			want: []store.WantedCert{{Primary: "a.example.com", Names: []string{"a.example.com", "b.example.com"}, Issuer: acme}}},
		{name: "same subject merges to union",
			sets: [][]string{{"a.example.com", "c.example.com"}, {"a.example.com", "b.example.com"}},
			want: []store.WantedCert{{Primary: "a.example.com", Names: []string{"a.example.com", "b.example.com", "c.example.com"}, Issuer: acme}}},
		{name: "same name in two certificates is allowed",
			sets: [][]string{{"a.example.com", "b.example.com"}, {"b.example.com"}},
			want: []store.WantedCert{
				{Primary: "a.example.com", Names: []string{"a.example.com", "b.example.com"}, Issuer: acme},
				{Primary: "b.example.com", Names: []string{"b.example.com"}, Issuer: acme}}},
		{name: "duplicates within a set",
			sets: [][]string{{"a.example.com", "a.example.com"}},
			want: []store.WantedCert{{Primary: "a.example.com", Names: []string{"a.example.com"}, Issuer: acme}}},
		{name: "wildcard folding: one label below only",
			sets: [][]string{{"a.example.com"}, {"b.example.com", "x.y.example.com", "example.com"}},
			opts: PlanOptions{WildcardDomains: []string{"example.com"}},
			want: []store.WantedCert{
				{Primary: "*.example.com", Names: []string{"*.example.com"}, Issuer: acme},
				{Primary: "x.y.example.com", Names: []string{"x.y.example.com", "example.com"}, Issuer: acme}}},
		{name: "nested wildcard domains",
			sets: [][]string{{"a.sub.example.com", "b.example.com"}},
			opts: PlanOptions{WildcardDomains: []string{"example.com", "sub.example.com"}},
			want: []store.WantedCert{
				{Primary: "*.example.com", Names: []string{"*.example.com"}, Issuer: acme},
				{Primary: "*.sub.example.com", Names: []string{"*.sub.example.com"}, Issuer: acme}}},
		{name: "wildcard not matching other domains",
			sets: [][]string{{"a.notexample.com"}},
			opts: PlanOptions{WildcardDomains: []string{"example.com"}},
			want: []store.WantedCert{{Primary: "a.notexample.com", Names: []string{"a.notexample.com"}, Issuer: acme}}},
		{name: "auto issuer: local suffixes",
			sets: [][]string{{"app.localhost"}, {"a.test"}, {"b.internal"}, {"c.local"}, {"localhost"}, {"www.example.com", "dev.test"}, {"test.example.com"}},
			want: []store.WantedCert{
				{Primary: "a.test", Names: []string{"a.test"}, Issuer: local},
				{Primary: "app.localhost", Names: []string{"app.localhost"}, Issuer: local},
				{Primary: "b.internal", Names: []string{"b.internal"}, Issuer: local},
				{Primary: "c.local", Names: []string{"c.local"}, Issuer: local},
				{Primary: "localhost", Names: []string{"localhost"}, Issuer: local},
				{Primary: "test.example.com", Names: []string{"test.example.com"}, Issuer: acme},
				{Primary: "www.example.com", Names: []string{"www.example.com", "dev.test"}, Issuer: local}}},
		{name: "forced local",
			sets: [][]string{{"www.example.com"}}, opts: PlanOptions{Issuer: IssuerLocal},
			want: []store.WantedCert{{Primary: "www.example.com", Names: []string{"www.example.com"}, Issuer: local}}},
		{name: "forced acme",
			sets: [][]string{{"a.test"}}, opts: PlanOptions{Issuer: IssuerACME},
			want: []store.WantedCert{{Primary: "a.test", Names: []string{"a.test"}, Issuer: acme}}},
		{name: "too many names", sets: [][]string{manyNames(101)}, want: nil, warns: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, warns := Plan(UnrestrictedSets(tc.sets, "test"), tc.opts)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Plan:\n got %+v\nwant %+v", got, tc.want)
			}
			if len(warns) != tc.warns {
				t.Errorf("warnings %q, want %d", warns, tc.warns)
			}
		})
	}
}

func manyNames(n int) []string {
	var s []string
	for i := range n {
		s = append(s, "n"+string(rune('a'+i%26))+string(rune('a'+i/26))+".example.com")
	}
	return s
}

func TestServiceNamesSkipsHTTPSOff(t *testing.T) {
	res := routing.Result{
		Services: []routing.Service{
			{Container: "a", Node: "h", HTTPS: routing.HTTPSRedirect, Protocol: "http", Hosts: []string{"a.example.com"}, CertHosts: []string{"a.example.com"}},
			{Container: "b", Node: "h", HTTPS: routing.HTTPSOff, Protocol: "http", Hosts: []string{"b.example.com"}, CertHosts: []string{"b.example.com"}},
			{Container: "c", Node: "h", HTTPS: routing.HTTPSBoth},
		},
		Routes: []routing.Route{
			{Host: "a.example.com", Protocol: "http", HTTPS: routing.HTTPSRedirect, Containers: []string{"a"}},
			{Host: "b.example.com", Protocol: "http", HTTPS: routing.HTTPSOff, Containers: []string{"b"}}},
	}
	got := ServiceNames(res)
	want := []NameSet{{Names: []string{"a.example.com"}, Owner: `container "a" on node "h"`, Routed: []string{"a.example.com"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestServiceNamesRoutedOnlyAcceptedClaims runs the real routing.Build:
// only accepted vhost claims count as routed, also when a container of the
// same name on another Docker host claims the vhost with other settings.
func TestServiceNamesRoutedOnlyAcceptedClaims(t *testing.T) {
	rec := func(node, id, name string, labels map[string]string) store.Container {
		labels[routing.LabelPort] = "80"
		return store.Container{ID: id, Name: name, Host: node, State: "running", Labels: labels}
	}
	cs := []store.Container{
		rec("h1", "1", "web", map[string]string{routing.LabelVhost: "app.example.com", routing.LabelHTTPS: "redirect"}),
		// Same name, other node, conflicting settings: its claim on
		// app.example.com is rejected.
		rec("h2", "2", "web", map[string]string{routing.LabelVhost: "app.example.com, b.test", routing.LabelHTTPS: "both"}),
		// An identical replica: accepted.
		rec("h3", "3", "replica", map[string]string{routing.LabelVhost: "app.example.com, r.test", routing.LabelHTTPS: "redirect"}),
	}
	got := map[string][]string{}
	for _, ns := range ServiceNames(routing.Build(cs, routing.Options{})) {
		got[ns.Owner] = ns.Routed
	}
	want := map[string][]string{
		`container "web" on node "h1"`:     {"app.example.com"},
		`container "web" on node "h2"`:     {"b.test"},
		`container "replica" on node "h3"`: {"app.example.com", "r.test"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("routed names:\n got %q\nwant %q", got, want)
	}
}

// TestPlanOwnership: a merge never changes an existing certificate's issuer
// and never adds a name another container routes (issue 8, class 3).
func TestPlanOwnership(t *testing.T) {
	acme, local := store.IssuerACME, store.IssuerLocal
	a := NameSet{Names: []string{"app.example.com"}, Owner: "A", Routed: []string{"app.example.com"}}
	tests := []struct {
		name  string
		sets  []NameSet
		opts  PlanOptions
		want  []store.WantedCert
		warns int
	}{
		{name: "foreign cert name is dropped",
			sets: []NameSet{a, {Names: []string{"app.example.com", "b.test"}, Owner: "B", Routed: []string{"b.test"}}},
			want: []store.WantedCert{
				{Primary: "app.example.com", Names: []string{"app.example.com"}, Issuer: acme},
				{Primary: "b.test", Names: []string{"b.test"}, Issuer: local}},
			warns: 1},
		{name: "foreign name as a SAN is dropped",
			sets: []NameSet{a, {Names: []string{"b.example.com", "app.example.com"}, Owner: "B", Routed: []string{"b.example.com"}}},
			want: []store.WantedCert{
				{Primary: "app.example.com", Names: []string{"app.example.com"}, Issuer: acme},
				{Primary: "b.example.com", Names: []string{"b.example.com"}, Issuer: acme}},
			warns: 1},
		{name: "container routing nothing certifies nothing",
			sets:  []NameSet{a, {Names: []string{"app.example.com", "evil.test"}, Owner: "B", Routed: []string{}}},
			want:  []store.WantedCert{{Primary: "app.example.com", Names: []string{"app.example.com"}, Issuer: acme}},
			warns: 2},
		{name: "replica adding a local name does not switch the issuer",
			sets: []NameSet{a, {Names: []string{"app.example.com", "foo.test"}, Owner: "B", Routed: []string{"app.example.com", "foo.test"}}},
			want: []store.WantedCert{
				{Primary: "app.example.com", Names: []string{"app.example.com"}, Issuer: acme},
				{Primary: "foo.test", Names: []string{"foo.test"}, Issuer: local}},
			warns: 1},
		{name: "order of sets does not matter",
			sets: []NameSet{{Names: []string{"app.example.com", "foo.test"}, Owner: "B", Routed: []string{"app.example.com", "foo.test"}}, a},
			want: []store.WantedCert{
				{Primary: "app.example.com", Names: []string{"app.example.com"}, Issuer: acme},
				{Primary: "foo.test", Names: []string{"foo.test"}, Issuer: local}},
			warns: 1},
		{name: "replica adding a public name merges",
			sets: []NameSet{a, {Names: []string{"app.example.com", "new.example.com"}, Owner: "B", Routed: []string{"app.example.com", "new.example.com"}}},
			want: []store.WantedCert{{Primary: "app.example.com", Names: []string{"app.example.com", "new.example.com"}, Issuer: acme}}},
		{name: "one container with public and local names stays local",
			sets: []NameSet{{Names: []string{"www.example.com", "dev.test"}, Owner: "A", Routed: []string{"www.example.com", "dev.test"}}},
			want: []store.WantedCert{{Primary: "www.example.com", Names: []string{"www.example.com", "dev.test"}, Issuer: local}}},
		{name: "local subject: all agree",
			sets: []NameSet{
				{Names: []string{"a.test"}, Owner: "A", Routed: []string{"a.test"}},
				{Names: []string{"a.test", "b.test"}, Owner: "B", Routed: []string{"a.test", "b.test"}}},
			want: []store.WantedCert{{Primary: "a.test", Names: []string{"a.test", "b.test"}, Issuer: local}}},
		{name: "cascading: the stripped set meets another subject",
			sets: []NameSet{
				a,
				{Names: []string{"app.example.com", "x.example.com", "y.test"}, Owner: "B", Routed: []string{"app.example.com", "x.example.com", "y.test"}},
				{Names: []string{"x.example.com"}, Owner: "C", Routed: []string{"x.example.com"}}},
			want: []store.WantedCert{
				{Primary: "app.example.com", Names: []string{"app.example.com"}, Issuer: acme},
				{Primary: "x.example.com", Names: []string{"x.example.com"}, Issuer: acme},
				{Primary: "y.test", Names: []string{"y.test"}, Issuer: local}},
			warns: 2},
		{name: "forced issuer: no conflict",
			sets: []NameSet{a, {Names: []string{"app.example.com", "foo.test"}, Owner: "B", Routed: []string{"app.example.com", "foo.test"}}},
			opts: PlanOptions{Issuer: IssuerACME},
			want: []store.WantedCert{{Primary: "app.example.com", Names: []string{"app.example.com", "foo.test"}, Issuer: acme}}},
		{name: "domains file is unrestricted",
			sets: UnrestrictedSets([][]string{{"app.example.com", "other.example.com"}}, "domains file"),
			want: []store.WantedCert{{Primary: "app.example.com", Names: []string{"app.example.com", "other.example.com"}, Issuer: acme}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, warns := Plan(tc.sets, tc.opts)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Plan:\n got %+v\nwant %+v", got, tc.want)
			}
			if len(warns) != tc.warns {
				t.Errorf("warnings %q, want %d", warns, tc.warns)
			}
		})
	}
}

func TestPlanFromRecords(t *testing.T) {
	cs := []store.Container{
		{ID: "1", Name: "web", Host: "h", State: "running", Labels: map[string]string{routing.LabelVhost: "www.example.com, example.com", routing.LabelPort: "80"}},
		{ID: "2", Name: "plain", Host: "h", State: "running", Labels: map[string]string{routing.LabelVhost: "plain.example.com", routing.LabelPort: "80", routing.LabelHTTPS: "off"}},
	}
	got, _ := Plan(ServiceNames(routing.Build(cs, routing.Options{})), PlanOptions{})
	want := []store.WantedCert{{Primary: "www.example.com", Names: []string{"www.example.com", "example.com"}, Issuer: store.IssuerACME}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestCoversAndSelect(t *testing.T) {
	for _, tc := range []struct {
		names []string
		host  string
		want  bool
	}{
		{[]string{"a.example.com"}, "a.example.com", true},
		{[]string{"*.example.com"}, "a.example.com", true},
		{[]string{"*.example.com"}, "example.com", false},
		{[]string{"*.example.com"}, "a.b.example.com", false},
		{[]string{"*.example.com"}, "aexample.com", false},
	} {
		if got := Covers(tc.names, tc.host); got != tc.want {
			t.Errorf("Covers(%q, %q) = %v", tc.names, tc.host, got)
		}
	}
	bs := []store.CertBundle{{Primary: "*.example.com", Names: []string{"*.example.com"}}, {Primary: "a.example.com", Names: []string{"a.example.com"}}}
	if b, ok := Select(bs, "a.example.com"); !ok || b.Primary != "a.example.com" {
		t.Errorf("Select exact: %v %v", b.Primary, ok)
	}
	if b, ok := Select(bs, "b.example.com"); !ok || b.Primary != "*.example.com" {
		t.Errorf("Select wildcard: %v %v", b.Primary, ok)
	}
	if _, ok := Select(bs, "other.org"); ok {
		t.Error("Select other.org found a bundle")
	}
}

func TestNormalizeName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Example.COM", "example.com"},
		{"*.example.com", "*.example.com"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"example.com.", "example.com"},
		{"", ""},
		{"a..b", ""},
		{"-a.com", ""},
		{"a_b.com", ""},
		{"a.*.com", ""},
		{"**.com", ""},
		{"a/b.com", ""},
		{"a\x00b.com", ""},
		{"a b.com", ""},
		{string(make([]byte, 300)), ""},
	} {
		got, err := NormalizeName(tc.in)
		if (err != nil) != (tc.want == "") || got != tc.want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestPlanPathsOneCertificate: containers serving different paths of one
// vhost get one certificate for the vhost, not one per path, and a path
// container's names count as routed.
func TestPlanPathsOneCertificate(t *testing.T) {
	rec := func(id, name string, labels map[string]string, env map[string]string) store.Container {
		labels[routing.LabelPort] = "80"
		return store.Container{ID: id, Name: name, Host: "h", State: "running", Labels: labels, Env: env}
	}
	cs := []store.Container{
		rec("1", "root", map[string]string{routing.LabelVhost: "app.example.com"}, nil),
		rec("2", "api", map[string]string{routing.LabelVhost: "app.example.com", routing.LabelPath: "/api", routing.LabelProtocol: "grpc"}, nil),
		rec("3", "app1", map[string]string{}, map[string]string{routing.EnvVirtualHost: "app.example.com", routing.EnvVirtualPath: "/app1/", routing.EnvVirtualDest: "/"}),
	}
	sets := ServiceNames(routing.Build(cs, routing.Options{}))
	if len(sets) != 3 {
		t.Fatalf("name sets %+v", sets)
	}
	for _, ns := range sets {
		if !slices.Equal(ns.Routed, []string{"app.example.com"}) {
			t.Errorf("%s routes %v", ns.Owner, ns.Routed)
		}
	}
	got, warnings := Plan(sets, PlanOptions{})
	want := []store.WantedCert{{Primary: "app.example.com", Names: []string{"app.example.com"}, Issuer: store.IssuerACME}}
	if !reflect.DeepEqual(got, want) || len(warnings) > 0 {
		t.Errorf("got %+v (warnings %v), want %+v", got, warnings, want)
	}
}
