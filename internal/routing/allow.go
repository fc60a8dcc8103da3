package routing

import (
	"fmt"
	"strings"
)

// AllowList limits which names the containers of each Docker host (a
// record's Node, the reporter's --host) may claim, for installations where
// hosts belong to different tenants. The zero value allows every name.
//
// Entries (--allowed-domains) are "[node=]pattern":
//   - "example.com" allows example.com and every name under it;
//   - "*.example.com" allows only the names under example.com;
//   - "*" allows every name.
//
// An entry without "node=" applies to every node; with it, only to that
// node's containers. Once any entry is given, a node may claim only what
// its entries and the node-less ones allow: a node that no entry covers can
// claim nothing. A wildcard vhost "*.a.example.com" is allowed when every
// name it matches is; a trailing wildcard ("www.example.*") matches names
// under every top-level domain, so only "*" allows it.
type AllowList struct {
	set   bool
	all   []allowEntry
	nodes map[string][]allowEntry
}

type allowEntry struct {
	domain  string // normalized; "" for "*"
	subOnly bool   // "*.domain": names under domain only
}

// ParseAllowList parses --allowed-domains entries. Patterns are normalized
// like vhosts (lower-case, punycode).
func ParseAllowList(entries []string) (AllowList, error) {
	var a AllowList
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		node, pattern, scoped := strings.Cut(e, "=")
		if !scoped {
			node, pattern = "", e
		}
		if scoped && (node == "" || strings.ContainsAny(node, " \t")) {
			return AllowList{}, fmt.Errorf("allowed domain %q: empty or blank node name before '='", e)
		}
		var ent allowEntry
		if pattern != "*" {
			h, err := normalizeHost(pattern)
			if err == nil && IsTrailingWildcard(h) {
				err = fmt.Errorf("a trailing wildcard cannot bound the names allowed")
			}
			if err != nil {
				return AllowList{}, fmt.Errorf("allowed domain %q: %w", e, err)
			}
			ent.domain, ent.subOnly = strings.CutPrefix(h, "*.")
		}
		a.set = true
		if !scoped {
			a.all = append(a.all, ent)
			continue
		}
		if a.nodes == nil {
			a.nodes = map[string][]allowEntry{}
		}
		a.nodes[node] = append(a.nodes[node], ent)
	}
	return a, nil
}

// Enabled reports whether any entry was given.
func (a AllowList) Enabled() bool { return a.set }

// Allows reports whether a container on node may claim name, a normalized
// vhost (as ParseService returns them).
func (a AllowList) Allows(node, name string) bool {
	if !a.set {
		return true
	}
	for _, es := range [][]allowEntry{a.all, a.nodes[node]} {
		for _, e := range es {
			if e.allows(name) {
				return true
			}
		}
	}
	return false
}

func (e allowEntry) allows(name string) bool {
	if e.domain == "" {
		return true
	}
	base, wild := strings.CutPrefix(name, "*.")
	under := strings.HasSuffix(base, "."+e.domain)
	if wild {
		// *.base matches only names under base.
		return base == e.domain || under
	}
	return under || base == e.domain && !e.subOnly
}
