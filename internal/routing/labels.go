package routing

// Every label and environment variable Portico reads from a container is
// named in this file.

// Portico's own labels.
const (
	LabelPrefix   = "portico."
	LabelVhost    = "portico.vhost"    // host names, comma or space separated; the first is the certificate subject
	LabelPort     = "portico.port"     // container port to proxy
	LabelProtocol = "portico.protocol" // http, https, grpc, grpcs
	LabelNetwork  = "portico.network"  // Docker network whose address to use
	LabelDefault  = "portico.default"  // true: this vhost answers unknown hosts
	LabelEnable   = "portico.enable"   // false: ignore this container
	LabelHTTPS    = "portico.https"    // auto (default), redirect, both, off
	LabelHSTS     = "portico.hsts"     // true, false, a max-age in seconds, or a full header value
	LabelRoot     = "portico.root"     // fastcgi: the document root inside the container (VIRTUAL_ROOT)
	LabelAddress  = "portico.address"  // auto (default), container, host: how a proxy reaches the container (reach.go)
)

// Per-site redirect and header options (package siteopts, which repeats
// these names; TestSiteoptsLabelsMatch).
const (
	LabelRedirectFrom     = "portico.redirect-from"      // names that redirect to this container's first vhost
	LabelRedirectTo       = "portico.redirect-to"        // the whole vhost redirects to this absolute URL
	LabelRedirectCode     = "portico.redirect-code"      // 301 (default), 302, 307, 308
	LabelRedirectKeepPath = "portico.redirect-keep-path" // true: append the request's path and query to redirect-to
	LabelSecurityHeaders  = "portico.security-headers"   // true: the documented preset
	LabelResponseHeader   = "portico.response-header."   // prefix: + header name; sets one response header
	LabelRequestHeader    = "portico.request-header."    // prefix: + header name; sets one request header
)

// KnownLabelPrefixes are label prefixes whose every key is known.
var KnownLabelPrefixes = []string{LabelResponseHeader, LabelRequestHeader}

// Path labels (internal/pathprefix): the path prefix a container serves on
// its vhosts, and whether the prefix is stripped before proxying.
const (
	LabelPath      = "portico.path"       // a path prefix, "/" (the default) to "/api/v2/"
	LabelStripPath = "portico.strip-path" // true: the upstream gets the path without the prefix
)

// Per-site access and limit options (package siteopts, access.go); each
// label is siteopts.LabelPrefix plus the option's name in the dynamic table.
const (
	LabelAllow          = "portico.allow"           // client CIDRs or addresses allowed, comma-separated; others get 403
	LabelAuthFile       = "portico.auth-file"       // htpasswd file name inside --auth-dir
	LabelMaxBody        = "portico.max-body"        // request body limit, nginx size (10m); 0: none
	LabelTimeout        = "portico.timeout"         // upstream read and send timeout, nginx time (90s)
	LabelConnectTimeout = "portico.connect-timeout" // upstream connect timeout, nginx time (5s)
	LabelRate           = "portico.rate"            // requests per client address, nginx rate (10r/s, 30r/m)
	LabelRateBurst      = "portico.rate-burst"      // requests served at once above the rate
)

// AccessLabels are the access and limit option labels.
var AccessLabels = []string{LabelAllow, LabelAuthFile, LabelMaxBody, LabelTimeout, LabelConnectTimeout, LabelRate, LabelRateBurst}

// Labels of the original 2016 design (docker-service-* containers); each
// means the same as its portico.* counterpart.
const (
	LegacyVhost    = "com.chameth.vhost"
	LegacyPort     = "com.chameth.proxy"
	LegacyProtocol = "com.chameth.proxy.protocol"
	LegacyDefault  = "com.chameth.proxy.default"
)

// nginx-proxy's environment variables, honoured for migration, and the
// acme-companion ones that name a container's certificate.
const (
	EnvVirtualHost     = "VIRTUAL_HOST"
	EnvVirtualPort     = "VIRTUAL_PORT"
	EnvVirtualProto    = "VIRTUAL_PROTO"
	EnvLetsEncryptHost = "LETSENCRYPT_HOST"
	EnvACMEHost        = "ACME_HOST"
	EnvHTTPSMethod     = "HTTPS_METHOD" // redirect, noredirect, nohttps (nohttp: see parse.go)
	EnvHSTS            = "HSTS"         // a full header value, or off
	EnvVirtualRoot     = "VIRTUAL_ROOT" // fastcgi: the document root inside the container
	EnvVirtualPath     = "VIRTUAL_PATH" // portico.path's env form
	EnvVirtualDest     = "VIRTUAL_DEST" // the path the prefix is replaced with upstream (nginx-proxy semantics)
)

// AllowedEnv lists the environment variables Portico reads, which the
// reporter copies out of a container whole. Everything else may hold secrets
// and never leaves the host, but for the names in IgnoredEnv.
var AllowedEnv = []string{EnvVirtualHost, EnvVirtualPort, EnvVirtualProto, EnvLetsEncryptHost, EnvACMEHost, EnvHTTPSMethod, EnvHSTS, EnvVirtualRoot, EnvVirtualPath, EnvVirtualDest}

// IgnoredEnv are the per-container variables documented by nginx-proxy and
// acme-companion that Portico does not read. A container that sets one gets a
// warning naming it, so a migration does not fail silently. The reporter
// copies them with the value cut to IgnoredEnvValueBytes.
var IgnoredEnv = []string{
	// nginx-proxy
	"VIRTUAL_HOST_MULTIPORTS",
	"NETWORK_ACCESS", "SSL_POLICY", "CERT_NAME", "NON_GET_REDIRECT",
	"ACME_HTTP_CHALLENGE_LOCATION",
	// acme-companion
	"LETSENCRYPT_EMAIL", "LETSENCRYPT_TEST", "LETSENCRYPT_SINGLE_DOMAIN_CERTS",
	"LETSENCRYPT_RESTART_CONTAINER", "LETSENCRYPT_MIN_VALIDITY", "LETSENCRYPT_KEYSIZE",
	"ACME_EMAIL", "ACME_CA_URI", "ACME_CHALLENGE", "ACME_PREFERRED_CHAIN", "ACME_OCSP",
	"ACME_PRE_HOOK", "ACME_POST_HOOK", "ACME_EAB_KID",
}

// SecretEnv are acme-companion variables that hold credentials: the reporter
// copies only the fact that one is set (the value SecretEnvMarker), never
// the value, and the container gets the same warning as for IgnoredEnv.
var SecretEnv = []string{"ACME_EAB_HMAC_KEY", "ZEROSSL_API_KEY", "ACMESH_DNS_API_CONFIG"}

// SecretEnvMarker replaces a SecretEnv variable's value in a record.
const SecretEnvMarker = "(set; value not copied)"

// IgnoredEnvValueBytes bounds the value the reporter copies of an IgnoredEnv
// variable: (len(IgnoredEnv)+len(SecretEnv)) * (name + 128) bytes is about
// 4 KiB, far under a record's 64 KiB.
const IgnoredEnvValueBytes = 128

// isEnvName reports whether key names an environment variable a record may
// hold (for how a problem renders it).
func isEnvName(key string) bool {
	for _, l := range [][]string{AllowedEnv, IgnoredEnv, SecretEnv} {
		for _, k := range l {
			if k == key {
				return true
			}
		}
	}
	return false
}

// KnownLabels is every portico.* label, for "did you mean" on unknown ones.
var KnownLabels = append([]string{LabelVhost, LabelPort, LabelProtocol, LabelNetwork, LabelDefault, LabelEnable, LabelHTTPS, LabelHSTS, LabelAddress, LabelRoot,
	LabelRedirectFrom, LabelRedirectTo, LabelRedirectCode, LabelRedirectKeepPath, LabelSecurityHeaders, LabelPath, LabelStripPath},
	AccessLabels...)

// LegacyPrefix is the prefix of the 2016 design's labels.
const LegacyPrefix = "com.chameth."

// IsPorticoLabel reports whether Portico reads the label key: portico.* and
// the legacy com.chameth.* labels. The reporter copies only these (and its
// label-filter keys) out of a container; any other label never leaves the host.
func IsPorticoLabel(key string) bool {
	return hasPrefix(key, LabelPrefix) || hasPrefix(key, LegacyPrefix)
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }
