package store

import (
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The etcd roles of each stage, for a cluster with auth enabled (see
// docs/security-etcd.md and `portico etcd-setup`). Each grants what the
// stage's code touches and nothing more; the ranges are built from Keys, so
// they follow --prefix.
//
//	reporter <host>      readwrite containers/<host>/, hosts/alive/<host>, hosts/seen/<host>
//	nginx <instance>     read containers/, read hosts/, read certs/data/, read certs/wanted*, read acme/http01/tokens/,
//	                     readwrite status/nginx/<instance>, settings/nginx/<instance> and acme/http01/served/<instance>
//	certs                read containers/, read hosts/, readwrite certs/ (data, state, wanted, account, localca, locks),
//	                     readwrite acme/http01/tokens/, read acme/http01/served/
//	reader               read everything under the prefix (portico status)
//
// Every write is a transaction that compares the key's value first, so a
// writer needs read on what it writes too: hence readwrite. Locks are
// leased keys under certs/locks/, and a reporter's heartbeat is a leased
// key; granting and keeping a lease needs no permission, revoking it needs
// write on its keys, which certs/ and the reporter's own keys give.

// Grant is one permission of a role: Key alone, or the range [Key,
// RangeEnd) when RangeEnd is set (a prefix).
type Grant struct {
	Key      string
	RangeEnd string
	Perm     clientv3.PermissionType
}

// Role is an etcd role and its permissions.
type Role struct {
	Name   string
	Grants []Grant
}

// String lists the role's grants as a person reads them.
func (r Role) String() string {
	var b strings.Builder
	b.WriteString(r.Name)
	for _, g := range r.Grants {
		what := g.Key
		if g.RangeEnd != "" {
			what += "*"
		}
		fmt.Fprintf(&b, " %s:%s", permName(g.Perm), what)
	}
	return b.String()
}

func permName(p clientv3.PermissionType) string {
	switch p {
	case clientv3.PermissionType(clientv3.PermRead):
		return "read"
	case clientv3.PermissionType(clientv3.PermWrite):
		return "write"
	default:
		return "readwrite"
	}
}

func prefixGrant(prefix string, perm clientv3.PermissionType) Grant {
	return Grant{Key: prefix, RangeEnd: clientv3.GetPrefixRangeEnd(prefix), Perm: perm}
}

var (
	permRead      = clientv3.PermissionType(clientv3.PermRead)
	permReadWrite = clientv3.PermissionType(clientv3.PermReadWrite)
)

// RoleSpec says which roles an installation needs.
type RoleSpec struct {
	// Base starts every role and user name ("portico": portico-certs, …).
	Base string
	// ReporterHosts get one reporter role each (the --host of a reporter).
	ReporterHosts []string
	// NginxInstances get one nginx role each (the --instance of an nginx stage).
	NginxInstances []string
	// Certs adds the certs stage's role; Reader the read-only one.
	Certs, Reader bool
}

// Roles returns the roles spec asks for, under k's prefix, in a stable
// order: reporters, nginx stages, certs, reader. A host or instance that
// is empty, repeated, or not a plain name is an error naming it.
func Roles(k Keys, spec RoleSpec) ([]Role, error) {
	base := spec.Base
	if base == "" {
		base = "portico"
	}
	if err := checkRoleName("--role-base", base); err != nil {
		return nil, err
	}
	var out []Role
	seen := map[string]bool{}
	add := func(kind, what, name string, grants ...Grant) error {
		if err := checkRoleName(what, name); err != nil {
			return err
		}
		full := base + "-" + kind + "-" + name
		if seen[full] {
			return fmt.Errorf("%s %q: given twice", what, name)
		}
		seen[full] = true
		out = append(out, Role{Name: full, Grants: grants})
		return nil
	}
	for _, h := range spec.ReporterHosts {
		if err := add("reporter", "--reporter-host", h, prefixGrant(k.HostContainers(h), permReadWrite),
			Grant{Key: k.HostAlive(h), Perm: permReadWrite}, Grant{Key: k.HostSeen(h), Perm: permReadWrite}); err != nil {
			return nil, err
		}
	}
	for _, i := range spec.NginxInstances {
		if err := add("nginx", "--nginx-instance", i,
			prefixGrant(k.Containers(), permRead),
			prefixGrant(k.Hosts(), permRead),
			prefixGrant(k.CertData(), permRead),
			// The stage mirrors certs/wanted with a prefix watch (like every
			// mirror): a grant on the key alone refuses that range.
			prefixGrant(k.CertsWanted(), permRead),
			prefixGrant(k.HTTP01Tokens(), permRead),
			Grant{Key: k.NginxStatus(i), Perm: permReadWrite},
			Grant{Key: k.NginxSettings(i), Perm: permReadWrite},
			Grant{Key: k.HTTP01ServedBy(i), Perm: permReadWrite}); err != nil {
			return nil, err
		}
	}
	if spec.Certs {
		out = append(out, Role{Name: base + "-certs", Grants: []Grant{
			prefixGrant(k.Containers(), permRead),
			prefixGrant(k.Hosts(), permRead),
			prefixGrant(k.Certs(), permReadWrite),
			prefixGrant(k.HTTP01Tokens(), permReadWrite),
			prefixGrant(k.HTTP01Served(), permRead),
		}})
	}
	if spec.Reader {
		out = append(out, Role{Name: base + "-reader", Grants: []Grant{prefixGrant(k.Prefix()+"/", permRead)}})
	}
	return out, nil
}

// checkRoleName accepts the names Portico gives hosts and instances:
// letters, digits, '.', '_' and '-', at most 253 bytes.
func checkRoleName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s: empty name", what)
	}
	if len(s) > 253 {
		return fmt.Errorf("%s %.40q…: longer than 253 bytes", what, s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%s %q: character %q is not allowed (letters, digits, '.', '_', '-')", what, s, r)
		}
	}
	return nil
}
