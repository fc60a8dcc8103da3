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
	LabelHTTPS    = "portico.https"    // redirect (default), both, off
	LabelHSTS     = "portico.hsts"     // true, false, or a max-age in seconds
)

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
)

// AllowedEnv lists the only environment variables the reporter copies out of
// a container. Everything else may hold secrets and never leaves the host.
var AllowedEnv = []string{EnvVirtualHost, EnvVirtualPort, EnvVirtualProto, EnvLetsEncryptHost, EnvACMEHost}

// KnownLabels is every portico.* label, for "did you mean" on unknown ones.
var KnownLabels = []string{LabelVhost, LabelPort, LabelProtocol, LabelNetwork, LabelDefault, LabelEnable, LabelHTTPS, LabelHSTS}

// LegacyPrefix is the prefix of the 2016 design's labels.
const LegacyPrefix = "com.chameth."

// IsPorticoLabel reports whether Portico reads the label key: portico.* and
// the legacy com.chameth.* labels. The reporter copies only these (and its
// label-filter keys) out of a container; any other label never leaves the host.
func IsPorticoLabel(key string) bool {
	return hasPrefix(key, LabelPrefix) || hasPrefix(key, LegacyPrefix)
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }
