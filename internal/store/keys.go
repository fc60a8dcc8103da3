package store

import (
	"path"
	"strings"
)

// Every etcd key Portico reads or writes is built here. All live under a
// prefix (default /portico), so several installations can share a cluster.
//
//	<prefix>/containers/<host>/<id>        Container   written by the reporter on <host>
//	<prefix>/hosts/alive/<host>            hosts.Beat  the reporter on <host>'s heartbeat, bound to its etcd lease
//	<prefix>/hosts/seen/<host>             hosts.Seen  when the reporter on <host> last said it was alive (not leased)
//	<prefix>/status/nginx/<instance>       NginxStatus written by each nginx stage
//	<prefix>/settings/nginx/<instance>     NginxSettings written by each nginx stage
//	<prefix>/certs/wanted                  certificate list   written by the certs stage
//	<prefix>/certs/data/<primary>          certificate bundle written by the certs stage
//	<prefix>/certs/state/<primary>         issuance state     written by the certs stage
//	<prefix>/certs/locks/<primary>/        etcd mutex: one issuer per certificate
//	<prefix>/certs/account/<id>            ACME account       written by the certs stage
//	<prefix>/certs/localca                 the built-in local CA
//	<prefix>/acme/http01/tokens/<token>    pending http-01 key authorization, leased, written by the certs stage
//	<prefix>/acme/http01/served/<instance> the tokens one nginx stage serves, leased, written by that stage
//
// Host names, container IDs and certificate names never contain "/" once
// validated; the mapping rejects segments that do.

// DefaultPrefix is the key prefix when none is configured.
const DefaultPrefix = "/portico"

// Keys maps records to keys under one prefix.
type Keys struct {
	prefix string
}

// NewKeys returns the key mapping under prefix, normalised to one leading
// slash and no trailing slash.
func NewKeys(prefix string) Keys {
	p := "/" + strings.Trim(prefix, "/")
	if p == "/" {
		p = ""
	}
	return Keys{prefix: p}
}

// Prefix is the normalised prefix.
func (k Keys) Prefix() string { return k.prefix }

// Containers is the prefix of every container record.
func (k Keys) Containers() string { return k.prefix + "/containers/" }

// HostContainers is the prefix of one host's container records.
func (k Keys) HostContainers(host string) string { return k.Containers() + segment(host) + "/" }

// Container is the key of one container record.
func (k Keys) Container(host, id string) string { return k.HostContainers(host) + segment(id) }

// ParseContainerKey splits the part of a container key after Containers()
// into host and id. It accepts both the full key and the relative part.
func ParseContainerKey(key string) (host, id string, ok bool) {
	i := strings.Index(key, "/containers/")
	if i >= 0 {
		key = key[i+len("/containers/"):]
	}
	host, id, ok = strings.Cut(key, "/")
	if !ok || host == "" || id == "" || strings.Contains(id, "/") {
		return "", "", false
	}
	return host, id, true
}

// Hosts is the prefix of every host's liveness keys (internal/hosts).
func (k Keys) Hosts() string { return k.prefix + "/hosts/" }

// HostsAlive is the prefix of every host's heartbeat key.
func (k Keys) HostsAlive() string { return k.Hosts() + "alive/" }

// HostAlive is the key of one host's heartbeat, bound to its reporter's
// lease: it vanishes when the lease expires.
func (k Keys) HostAlive(host string) string { return k.HostsAlive() + segment(host) }

// HostsSeen is the prefix of every host's last-seen key.
func (k Keys) HostsSeen() string { return k.Hosts() + "seen/" }

// HostSeen is the key of when one host's reporter last said it was alive.
func (k Keys) HostSeen(host string) string { return k.HostsSeen() + segment(host) }

// NginxStatuses is the prefix of every nginx stage's status.
func (k Keys) NginxStatuses() string { return k.prefix + "/status/nginx/" }

// NginxStatus is the key of one nginx stage's status.
func (k Keys) NginxStatus(instance string) string { return k.NginxStatuses() + segment(instance) }

// NginxSettingsAll is the prefix of every nginx stage's published settings.
func (k Keys) NginxSettingsAll() string { return k.prefix + "/settings/nginx/" }

// NginxSettings is the key of the settings one nginx stage runs with:
// `portico status` and `explain` read them instead of repeating its flags.
func (k Keys) NginxSettings(instance string) string { return k.NginxSettingsAll() + segment(instance) }

// Certs is the prefix of everything the certs stage keeps.
func (k Keys) Certs() string { return k.prefix + "/certs/" }

// CertsWanted is the key of the published certificate list.
func (k Keys) CertsWanted() string { return k.Certs() + "wanted" }

// CertData is the prefix of every stored certificate bundle.
func (k Keys) CertData() string { return k.Certs() + "data/" }

// CertBundle is the key of the bundle of the certificate named primary.
func (k Keys) CertBundle(primary string) string { return k.CertData() + segment(primary) }

// CertStates is the prefix of every certificate's issuance state.
func (k Keys) CertStates() string { return k.Certs() + "state/" }

// CertState is the key of one certificate's issuance state.
func (k Keys) CertState(primary string) string { return k.CertStates() + segment(primary) }

// CertLocks is the prefix of every certificate's etcd mutex.
func (k Keys) CertLocks() string { return k.Certs() + "locks/" }

// CertLock is the etcd mutex prefix guarding one certificate's issuance;
// each contender's key is CertLock(primary) + "/" + its lease in hex.
func (k Keys) CertLock(primary string) string { return k.CertLocks() + segment(primary) }

// ACMEAccount is the key of the ACME account registered under id (a hash of
// directory URL and email).
func (k Keys) ACMEAccount(id string) string { return k.Certs() + "account/" + segment(id) }

// LocalCA is the key of the built-in local CA.
func (k Keys) LocalCA() string { return k.Certs() + "localca" }

// HTTP01Tokens is the prefix of the pending ACME http-01 challenges: one
// key per token, written (with a lease) by the certs stage while an order
// runs, read by every nginx stage, which serves them.
func (k Keys) HTTP01Tokens() string { return k.prefix + "/acme/http01/tokens/" }

// HTTP01Token is the key of one pending http-01 challenge.
func (k Keys) HTTP01Token(token string) string { return k.HTTP01Tokens() + segment(token) }

// HTTP01Served is the prefix of the nginx stages' acknowledgements: which
// tokens each one serves, so that the certs stage asks the CA to validate
// only once every live proxy answers.
func (k Keys) HTTP01Served() string { return k.prefix + "/acme/http01/served/" }

// HTTP01ServedBy is the acknowledgement key of one nginx stage.
func (k Keys) HTTP01ServedBy(instance string) string { return k.HTTP01Served() + segment(instance) }

// Last returns the final path segment of key.
func Last(key string) string { return path.Base(key) }

// segment makes s safe as one key segment: "/" cannot split it.
func segment(s string) string { return strings.ReplaceAll(s, "/", "%2F") }
