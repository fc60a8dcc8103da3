package store_test

import (
	"reflect"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/store"
)

func TestRoles(t *testing.T) {
	rw := clientv3.PermissionType(clientv3.PermReadWrite)
	r := clientv3.PermissionType(clientv3.PermRead)
	pfx := func(key string, perm clientv3.PermissionType) store.Grant {
		return store.Grant{Key: key, RangeEnd: clientv3.GetPrefixRangeEnd(key), Perm: perm}
	}
	tests := []struct {
		name    string
		prefix  string
		spec    store.RoleSpec
		want    []store.Role
		wantErr string
	}{
		{name: "reporter owns its host's containers and liveness keys only", prefix: "/portico",
			spec: store.RoleSpec{ReporterHosts: []string{"docker-1"}},
			want: []store.Role{{Name: "portico-reporter-docker-1", Grants: []store.Grant{pfx("/portico/containers/docker-1/", rw),
				{Key: "/portico/hosts/alive/docker-1", Perm: rw}, {Key: "/portico/hosts/seen/docker-1", Perm: rw}}}}},
		{name: "nginx reads containers and bundles, writes its own status", prefix: "/portico",
			spec: store.RoleSpec{NginxInstances: []string{"edge-a"}},
			want: []store.Role{{Name: "portico-nginx-edge-a", Grants: []store.Grant{
				pfx("/portico/containers/", r), pfx("/portico/hosts/", r), pfx("/portico/certs/data/", r),
				pfx("/portico/certs/wanted", r), pfx("/portico/acme/http01/tokens/", r),
				{Key: "/portico/status/nginx/edge-a", Perm: rw}, {Key: "/portico/settings/nginx/edge-a", Perm: rw},
				{Key: "/portico/acme/http01/served/edge-a", Perm: rw}}}}},
		{name: "certs reads containers and owns certs/", prefix: "portico/",
			spec: store.RoleSpec{Certs: true},
			want: []store.Role{{Name: "portico-certs", Grants: []store.Grant{pfx("/portico/containers/", r), pfx("/portico/hosts/", r), pfx("/portico/certs/", rw),
				pfx("/portico/acme/http01/tokens/", rw), pfx("/portico/acme/http01/served/", r)}}}},
		{name: "reader reads the prefix", prefix: "/site-b", spec: store.RoleSpec{Base: "b", Reader: true},
			want: []store.Role{{Name: "b-reader", Grants: []store.Grant{pfx("/site-b/", r)}}}},
		{name: "order is stable", prefix: "/p", spec: store.RoleSpec{Reader: true, Certs: true, NginxInstances: []string{"n"}, ReporterHosts: []string{"h2", "h1"}},
			want: nil},
		{name: "a host that is a path", prefix: "/p", spec: store.RoleSpec{ReporterHosts: []string{"../certs"}}, wantErr: `--reporter-host "../certs": character '/'`},
		{name: "an empty instance", prefix: "/p", spec: store.RoleSpec{NginxInstances: []string{""}}, wantErr: "--nginx-instance: empty name"},
		{name: "a repeated host", prefix: "/p", spec: store.RoleSpec{ReporterHosts: []string{"a", "a"}}, wantErr: `--reporter-host "a": given twice`},
		{name: "a bad base", prefix: "/p", spec: store.RoleSpec{Base: "x y", Certs: true}, wantErr: `--role-base "x y"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store.Roles(store.NewKeys(tt.prefix), tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				var names []string
				for _, r := range got {
					names = append(names, r.Name)
				}
				if want := "portico-reporter-h2 portico-reporter-h1 portico-nginx-n portico-certs portico-reader"; strings.Join(names, " ") != want {
					t.Errorf("names = %v, want %s", names, want)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

// A reporter's range must not reach a host whose name extends it
// ("docker-1" must not cover "docker-10").
func TestReporterRangeStopsAtItsHost(t *testing.T) {
	k := store.NewKeys("/portico")
	roles, err := store.Roles(k, store.RoleSpec{ReporterHosts: []string{"docker-1"}})
	if err != nil {
		t.Fatal(err)
	}
	g := roles[0].Grants[0]
	in := func(key string) bool { return key >= g.Key && key < g.RangeEnd }
	for key, want := range map[string]bool{
		k.Container("docker-1", "abc"):  true,
		k.Container("docker-10", "abc"): false,
		k.Container("docker-0", "abc"):  false,
		k.CertBundle("x"):               false,
		k.HostContainers("docker-1"):    true,
	} {
		if in(key) != want {
			t.Errorf("%s in reporter range: %v, want %v", key, in(key), want)
		}
	}
}
