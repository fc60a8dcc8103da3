package main

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
)

// defaultNginxUser is the account a supervised nginx's workers run as when
// Portico runs as root: one that nothing else uses, so that no other
// process shares the workers' uid, which may read their memory (private
// keys) and signal them (docs/security.md).
const defaultNginxUser = "portico-nginx"

// nobodyUID is the uid of Debian's nobody.
const nobodyUID = 65534

// createAccountCommand is how an operator creates the workers' account.
func createAccountCommand(name string) string {
	return "useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin " + name
}

// account is a local account: the workers' user, its primary group, ids.
type account struct {
	User, Group string
	UID, GID    int
}

// errNoAccount is what a lookup returns for an account that does not exist.
var errNoAccount = errors.New("no such account")

// resolveWorkerUser decides which account a supervised nginx's workers run
// as (--nginx-user name, Portico's effective uid euid, external mode): none
// ("") unless Portico runs as root, since only a root master can switch
// users. As root, the account must exist (there is no silent fall back to
// nobody) and must not be root. An explicit nobody is allowed, with a
// warning: every other service that runs as nobody then shares the uid.
func resolveWorkerUser(name string, euid int, external bool, lookup func(string) (account, error)) (account, string, error) {
	if external || euid != 0 {
		return account{}, "", nil
	}
	if name == "" {
		return account{}, "", fmt.Errorf("--nginx-user is empty: run as root, nginx's workers need an account of their own (default %s; create it with: %s)",
			defaultNginxUser, createAccountCommand(defaultNginxUser))
	}
	a, err := lookup(name)
	if errors.Is(err, errNoAccount) {
		return account{}, "", fmt.Errorf("--nginx-user %s: the account nginx's workers run as does not exist; create it, for it alone, with: %s (or give --nginx-user another account that nothing else runs as)",
			name, createAccountCommand(name))
	}
	if err != nil {
		return account{}, "", fmt.Errorf("--nginx-user %s: %w", name, err)
	}
	switch {
	case a.UID == 0 || a.GID == 0:
		return account{}, "", fmt.Errorf("--nginx-user %s: uid %d gid %d: nginx's workers must not run as root (create an account: %s)",
			name, a.UID, a.GID, createAccountCommand(defaultNginxUser))
	case a.UID == nobodyUID || name == "nobody":
		return a, fmt.Sprintf("--nginx-user %s: nginx's workers share uid %d with every other process that runs as it, and any of them can read the workers' memory (the private keys they serve) and stop them; give them an account of their own (%s)",
			name, a.UID, createAccountCommand(defaultNginxUser)), nil
	}
	return a, "", nil
}

// lookupAccount finds an account and the name of its primary group in the
// system's user database.
func lookupAccount(name string) (account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return account{}, errNoAccount
		}
		return account{}, err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return account{}, fmt.Errorf("uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return account{}, fmt.Errorf("gid %q: %w", u.Gid, err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return account{}, fmt.Errorf("primary group %s: %w", u.Gid, err)
	}
	return account{User: u.Username, Group: g.Name, UID: uid, GID: gid}, nil
}
