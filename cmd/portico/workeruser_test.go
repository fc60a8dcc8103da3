package main

import (
	"errors"
	"strings"
	"testing"
)

func TestResolveWorkerUser(t *testing.T) {
	accounts := map[string]account{
		"portico-nginx": {User: "portico-nginx", Group: "portico-nginx", UID: 998, GID: 997},
		"edge":          {User: "edge", Group: "proxies", UID: 1500, GID: 1600},
		"nobody":        {User: "nobody", Group: "nogroup", UID: 65534, GID: 65534},
		"toor":          {User: "toor", Group: "root", UID: 0, GID: 0},
		"wheelie":       {User: "wheelie", Group: "root", UID: 1200, GID: 0},
	}
	lookup := func(n string) (account, error) {
		if n == "broken" {
			return account{}, errors.New("/etc/passwd: permission denied")
		}
		a, ok := accounts[n]
		if !ok {
			return account{}, errNoAccount
		}
		return a, nil
	}
	for _, tt := range []struct {
		name     string
		euid     int
		external bool
		missing  bool // the account is not on this machine
		want     account
		warn     string // substring; "" means no warning
		err      string // substring; "" means no error
	}{
		{name: "portico-nginx", euid: 0, want: accounts["portico-nginx"]},
		{name: "edge", euid: 0, want: accounts["edge"]},
		// Not root: nginx cannot switch, so no directive, whatever is given.
		{name: "portico-nginx", euid: 1000},
		{name: "portico-nginx", euid: 1000, missing: true},
		// External mode: someone else's nginx.
		{name: "portico-nginx", euid: 0, external: true, missing: true},
		// Missing: no fall back to nobody, and the error says how to create it.
		{name: "portico-nginx", euid: 0, missing: true, err: "--nginx-user portico-nginx: the account nginx's workers run as does not exist; create it, for it alone, with: useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin portico-nginx"},
		{name: "edge", euid: 0, missing: true, err: "useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin edge"},
		{name: "", euid: 0, err: "--nginx-user is empty"},
		{name: "broken", euid: 0, err: "--nginx-user broken: /etc/passwd: permission denied"},
		{name: "toor", euid: 0, err: "must not run as root"},
		{name: "wheelie", euid: 0, err: "must not run as root"},
		// Explicit nobody: allowed, with a warning that names the risk.
		{name: "nobody", euid: 0, want: accounts["nobody"], warn: "read the workers' memory"},
	} {
		l := lookup
		if tt.missing {
			l = func(string) (account, error) { return account{}, errNoAccount }
		}
		got, warn, err := resolveWorkerUser(tt.name, tt.euid, tt.external, l)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%q euid %d external %v: %v", tt.name, tt.euid, tt.external, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%q euid %d: err %v, want %q", tt.name, tt.euid, err, tt.err)
		case tt.err != "" && strings.Contains(err.Error(), "nobody"):
			t.Errorf("%q: the error must not offer nobody: %v", tt.name, err)
		}
		if got != tt.want {
			t.Errorf("%q euid %d external %v: %+v, want %+v", tt.name, tt.euid, tt.external, got, tt.want)
		}
		if (tt.warn == "") != (warn == "") || !strings.Contains(warn, tt.warn) {
			t.Errorf("%q euid %d: warning %q, want %q", tt.name, tt.euid, warn, tt.warn)
		}
	}
}

// TestLookupAccount reads this machine's user database: a missing account
// is errNoAccount, which resolveWorkerUser turns into how to create it.
func TestLookupAccount(t *testing.T) {
	if a, err := lookupAccount("root"); err != nil || a != (account{User: "root", Group: "root"}) {
		t.Fatalf("lookupAccount(root): %+v %v", a, err)
	}
	if _, err := lookupAccount("portico-no-such-account"); !errors.Is(err, errNoAccount) {
		t.Fatalf("lookupAccount of a missing account: %v, want errNoAccount", err)
	}
}
