package store

import (
	"context"
	"fmt"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// AuthPlan is what `portico etcd-setup` makes true on a cluster.
type AuthPlan struct {
	// Roles are created or corrected to exactly these grants.
	Roles []Role
	// Passwords holds each role's user's password: every role gets a user
	// of the same name that has that role alone.
	Passwords map[string]string
	// EnableAuth turns etcd's auth on, creating the root user (with
	// RootPassword) and role first when missing.
	EnableAuth   bool
	RootPassword string
}

// ApplyAuth makes the cluster match plan and returns what it did, one line
// per change. It is idempotent: a second run changes only passwords (which
// it always sets, so that rotating a password file takes effect).
func ApplyAuth(ctx context.Context, a clientv3.Auth, plan AuthPlan) ([]string, error) {
	var did []string
	roles, err := a.RoleList(ctx)
	if err != nil {
		return did, fmt.Errorf("list etcd roles: %w", err)
	}
	users, err := a.UserList(ctx)
	if err != nil {
		return did, fmt.Errorf("list etcd users: %w", err)
	}
	for _, r := range plan.Roles {
		pw, ok := plan.Passwords[r.Name]
		if !ok || pw == "" {
			return did, fmt.Errorf("user %s: no password", r.Name)
		}
		if !slices.Contains(roles.Roles, r.Name) {
			if _, err := a.RoleAdd(ctx, r.Name); err != nil {
				return did, fmt.Errorf("add role %s: %w", r.Name, err)
			}
			did = append(did, "added role "+r.Name)
		}
		cur, err := a.RoleGet(ctx, r.Name)
		if err != nil {
			return did, fmt.Errorf("read role %s: %w", r.Name, err)
		}
		for _, p := range cur.Perm {
			g := Grant{Key: string(p.Key), RangeEnd: string(p.RangeEnd), Perm: clientv3.PermissionType(p.PermType)}
			if slices.Contains(r.Grants, g) {
				continue
			}
			if _, err := a.RoleRevokePermission(ctx, r.Name, g.Key, g.RangeEnd); err != nil {
				return did, fmt.Errorf("role %s: revoke %s %q: %w", r.Name, permName(g.Perm), g.Key, err)
			}
			did = append(did, fmt.Sprintf("role %s: revoked %s %q", r.Name, permName(g.Perm), g.Key))
		}
		for _, g := range r.Grants {
			if _, err := a.RoleGrantPermission(ctx, r.Name, g.Key, g.RangeEnd, g.Perm); err != nil {
				return did, fmt.Errorf("role %s: grant %s %q: %w", r.Name, permName(g.Perm), g.Key, err)
			}
		}
		if !slices.Contains(users.Users, r.Name) {
			if _, err := a.UserAdd(ctx, r.Name, pw); err != nil {
				return did, fmt.Errorf("add user %s: %w", r.Name, err)
			}
			did = append(did, "added user "+r.Name)
		} else if _, err := a.UserChangePassword(ctx, r.Name, pw); err != nil {
			return did, fmt.Errorf("user %s: set password: %w", r.Name, err)
		}
		u, err := a.UserGet(ctx, r.Name)
		if err != nil {
			return did, fmt.Errorf("read user %s: %w", r.Name, err)
		}
		for _, other := range u.Roles {
			if other == r.Name {
				continue
			}
			if _, err := a.UserRevokeRole(ctx, r.Name, other); err != nil {
				return did, fmt.Errorf("user %s: revoke role %s: %w", r.Name, other, err)
			}
			did = append(did, fmt.Sprintf("user %s: revoked role %s", r.Name, other))
		}
		if !slices.Contains(u.Roles, r.Name) {
			if _, err := a.UserGrantRole(ctx, r.Name, r.Name); err != nil {
				return did, fmt.Errorf("user %s: grant role: %w", r.Name, err)
			}
			did = append(did, fmt.Sprintf("user %s: granted role %s", r.Name, r.Name))
		}
	}
	if !plan.EnableAuth {
		return did, nil
	}
	st, err := a.AuthStatus(ctx)
	if err != nil {
		return did, fmt.Errorf("etcd auth status: %w", err)
	}
	if st.Enabled {
		return did, nil
	}
	if !slices.Contains(users.Users, "root") {
		if plan.RootPassword == "" {
			return did, fmt.Errorf("enable auth: no root user yet and no root password (--etcd-user root with --etcd-password-file)")
		}
		if _, err := a.UserAdd(ctx, "root", plan.RootPassword); err != nil {
			return did, fmt.Errorf("add user root: %w", err)
		}
		did = append(did, "added user root")
	}
	if !slices.Contains(roles.Roles, "root") {
		if _, err := a.RoleAdd(ctx, "root"); err != nil {
			return did, fmt.Errorf("add role root: %w", err)
		}
	}
	if u, err := a.UserGet(ctx, "root"); err != nil {
		return did, fmt.Errorf("read user root: %w", err)
	} else if !slices.Contains(u.Roles, "root") {
		if _, err := a.UserGrantRole(ctx, "root", "root"); err != nil {
			return did, fmt.Errorf("user root: grant role root: %w", err)
		}
	}
	if _, err := a.AuthEnable(ctx); err != nil {
		return did, fmt.Errorf("enable etcd auth: %w", err)
	}
	return append(did, "enabled auth"), nil
}
