package routing

import (
	"reflect"
	"strings"
	"testing"

	"github.com/portico/portico/internal/store"
)

// base is the Service ctr("web", vhost("a.test")) yields; cases adjust it.
func base(mod func(*Service)) Service {
	s := Service{
		ContainerID: "id-web", Container: "web", Node: "node1",
		Hosts: []string{"a.test"}, CertHosts: []string{"a.test"},
		Port: 80, Protocol: ProtoHTTP, Network: "proxy", Addr: "172.18.0.2:80",
		HTTPS: HTTPSAuto, Live: true,
	}
	if mod != nil {
		mod(&s)
	}
	return s
}

func TestParseService(t *testing.T) {
	E, W := SeverityError, SeverityWarning
	rejected := Service{}
	tests := []struct {
		name  string
		c     store.Container
		opts  Options
		want  Service
		probs []wantProblem
	}{
		{name: "minimal", c: ctr("web", vhost("a.test")), want: base(nil)},
		{name: "leading slash of the Docker API dropped", c: ctr("/web", vhost("a.test"), func(c *store.Container) { c.ID = "id-web" }), want: base(nil)},

		// Host lists.
		{name: "hosts comma and space separated, normalised, de-duplicated",
			c: ctr("web", vhost(" A.Test, b.test.  a.test,,\tB.TEST c.test ")),
			want: base(func(s *Service) {
				s.Hosts = []string{"a.test", "b.test", "c.test"}
				s.CertHosts = s.Hosts
			})},
		{name: "wildcard leftmost", c: ctr("web", vhost("*.a.test a.test")),
			want: base(func(s *Service) { s.Hosts = []string{"*.a.test", "a.test"}; s.CertHosts = s.Hosts })},
		{name: "IDN to punycode", c: ctr("web", vhost("Bücher.Example")),
			want: base(func(s *Service) { s.Hosts = []string{"xn--bcher-kva.example"}; s.CertHosts = s.Hosts })},
		{name: "fullwidth letters and dots are mapped", c: ctr("web", vhost("ａ．test")), want: base(nil)},
		{name: "single-label host", c: ctr("web", vhost("localhost")),
			want: base(func(s *Service) { s.Hosts = []string{"localhost"}; s.CertHosts = s.Hosts })},
		{name: "wildcard inside", c: ctr("web", vhost("a.*.test")), want: rejected,
			probs: []wantProblem{{E, LabelVhost, "wildcard"}}},
		{name: "partial wildcard label", c: ctr("web", vhost("*a.test")), want: rejected,
			probs: []wantProblem{{E, LabelVhost, "wildcard"}}},
		{name: "bare wildcard", c: ctr("web", vhost("*")), want: rejected,
			probs: []wantProblem{{E, LabelVhost, "wildcard"}}},
		{name: "double wildcard", c: ctr("web", vhost("*.*.test")), want: rejected,
			probs: []wantProblem{{E, LabelVhost, "wildcard"}}},
		{name: "regex host", c: ctr("web", vhost("~^www\\.(?<d>.+)$")), want: rejected,
			probs: []wantProblem{{E, LabelVhost, "regular expressions (nginx's \"~\" form) are not supported; use a leading wildcard"}}},
		{name: "regex host from env", c: ctr("web", nil, withEnv(EnvVirtualHost, "~^a.*\\.test$")), want: rejected,
			probs: []wantProblem{{E, EnvVirtualHost, "regular expressions"}}},
		{name: "trailing wildcard: routed, HTTP only", c: ctr("web", vhost("WWW.Example.* www.example.com")),
			want: base(func(s *Service) {
				s.Hosts = []string{"www.example.*", "www.example.com"}
				s.CertHosts = []string{"www.example.com"}
			}),
			probs: []wantProblem{{W, LabelVhost, "a trailing wildcard gets no certificate: served over plain HTTP only"}}},
		{name: "trailing wildcard with https off: no warning", c: ctr("web", labels(LabelVhost, "www.example.*", LabelHTTPS, "off")),
			want: base(func(s *Service) { s.Hosts = []string{"www.example.*"}; s.CertHosts = nil; s.HTTPS = HTTPSOff })},
		{name: "trailing wildcard in LETSENCRYPT_HOST", c: ctr("web", vhost("www.example.*"), withEnv(EnvLetsEncryptHost, "www.example.*")), want: rejected,
			probs: []wantProblem{{E, EnvLetsEncryptHost, "a trailing wildcard cannot be named in a certificate"}}},
		{name: "trailing wildcard without a name", c: ctr("web", vhost(".*")), want: rejected,
			probs: []wantProblem{{E, LabelVhost, "needs a name before"}}},
		{name: "trailing wildcard after an empty label", c: ctr("web", vhost("www..*")), want: rejected,
			probs: []wantProblem{{E, LabelVhost, "needs a name before"}}},
		{name: "trailing wildcard not a whole label", c: ctr("web", vhost("www.example.c*")), want: rejected,
			probs: []wantProblem{{E, LabelVhost, "whole rightmost one"}}},
		{name: "both wildcards", c: ctr("web", vhost("*.example.*")), want: rejected,
			probs: []wantProblem{{E, LabelVhost, "only as the whole leftmost label"}}},
		{name: "each bad host reported", c: ctr("web", vhost("a_b.test ok.test -x.test")), want: rejected,
			probs: []wantProblem{{E, LabelVhost, `disallowed rune U+005F`}, {E, LabelVhost, `starts or ends with '-'`}}},
		{name: "two trailing dots", c: ctr("web", vhost("a.test..")), want: rejected,
			probs: []wantProblem{{E, LabelVhost, "empty label"}}},
		{name: "empty label", c: ctr("web", vhost("a..test")), want: rejected,
			probs: []wantProblem{{E, LabelVhost, "empty label"}}},
		{name: "64-byte label", c: ctr("web", vhost(strings.Repeat("a", 64)+".test")), want: rejected,
			probs: []wantProblem{{E, LabelVhost, "over 63"}}},
		{name: "63-byte label ok", c: ctr("web", vhost(strings.Repeat("a", 63)+".test")),
			want: base(func(s *Service) { s.Hosts = []string{strings.Repeat("a", 63) + ".test"}; s.CertHosts = s.Hosts })},
		{name: "254-byte name", c: ctr("web", vhost(longName(254))), want: rejected,
			probs: []wantProblem{{E, LabelVhost, "over 253"}}},
		{name: "253-byte name ok", c: ctr("web", vhost(longName(253))),
			want: base(func(s *Service) { s.Hosts = []string{longName(253)}; s.CertHosts = s.Hosts })},
		{name: "IPv4 as vhost", c: ctr("web", vhost("10.0.0.1")), want: rejected,
			probs: []wantProblem{{E, LabelVhost, "IP addresses"}}},
		{name: "hyphens in positions 3-4", c: ctr("web", vhost("ab--cd.test")), want: rejected,
			probs: []wantProblem{{E, LabelVhost, "not a valid host name"}}},
		{name: "injection", c: ctr("web", vhost("a.test; include /etc/passwd;")), want: rejected,
			probs: []wantProblem{{E, LabelVhost, `disallowed rune U+003B`}, {E, LabelVhost, `disallowed rune U+002F`}}},

		// Not proxied.
		{name: "no vhost: not proxied, no problem", c: ctr("web", labels(LabelPort, "8080")), want: Service{}},
		{name: "empty vhost label: not proxied, warned", c: ctr("web", vhost(" ")), want: Service{},
			probs: []wantProblem{{W, LabelVhost, "empty value ignored"}}},
		{name: "separators only: not proxied, warned", c: ctr("web", vhost(", ,")), want: Service{},
			probs: []wantProblem{{W, LabelVhost, "no host names"}}},
		{name: "enable=false ignores everything", c: ctr("web", labels(LabelEnable, "False", LabelVhost, "bad host", "portico.bogus", "x", LabelPort, "")), want: Service{}},
		{name: "enable=0", c: ctr("web", labels(LabelEnable, "0", LabelVhost, "a.test")), want: Service{}},
		{name: "enable=yes", c: ctr("web", labels(LabelEnable, "yes", LabelVhost, "a.test")), want: base(nil)},
		{name: "enable invalid", c: ctr("web", labels(LabelEnable, "maybe", LabelVhost, "a.test")), want: rejected,
			probs: []wantProblem{{E, LabelEnable, "not a boolean"}}},
		{name: "invalid container name", c: ctr("we b", vhost("a.test")), want: rejected,
			probs: []wantProblem{{E, "", "not a valid Docker name"}}},

		// Ports.
		{name: "port label", c: ctr("web", labels(LabelVhost, "a.test", LabelPort, "8080")),
			want: base(func(s *Service) { s.Port = 8080; s.Addr = "172.18.0.2:8080" })},
		{name: "port 65535", c: ctr("web", labels(LabelVhost, "a.test", LabelPort, "65535")),
			want: base(func(s *Service) { s.Port = 65535; s.Addr = "172.18.0.2:65535" })},
		{name: "port 1", c: ctr("web", labels(LabelVhost, "a.test", LabelPort, "1")),
			want: base(func(s *Service) { s.Port = 1; s.Addr = "172.18.0.2:1" })},
		{name: "single exposed port is the default", c: ctr("web", vhost("a.test"), withPorts(store.Port{Port: 3000, Proto: "tcp"})),
			want: base(func(s *Service) { s.Port = 3000; s.Addr = "172.18.0.2:3000" })},
		{name: "one port bound on v4 and v6 counts once", c: ctr("web", vhost("a.test"), withPorts(
			store.Port{Port: 3000, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 3000},
			store.Port{Port: 3000, Proto: "tcp", HostIP: "::", HostPort: 3000},
			store.Port{Port: 53, Proto: "udp"})),
			want: base(func(s *Service) { s.Port = 3000; s.Addr = "172.18.0.2:3000" })},
		{name: "several exposed ports: 80", c: ctr("web", vhost("a.test"), withPorts(store.Port{Port: 3000, Proto: "tcp"}, store.Port{Port: 3001, Proto: "tcp"})),
			want: base(nil)},
		{name: "label beats exposed port", c: ctr("web", labels(LabelVhost, "a.test", LabelPort, "81"), withPorts(store.Port{Port: 3000, Proto: "tcp"})),
			want: base(func(s *Service) { s.Port = 81; s.Addr = "172.18.0.2:81" })},

		// Protocols, https, hsts, default.
		{name: "protocol case-insensitive", c: ctr("web", labels(LabelVhost, "a.test", LabelProtocol, "GRPCS")),
			want: base(func(s *Service) { s.Protocol = ProtoGRPCS })},
		{name: "protocol unsupported", c: ctr("web", labels(LabelVhost, "a.test", LabelProtocol, "scgi")), want: rejected,
			probs: []wantProblem{{E, LabelProtocol, "want one of http, https, grpc, grpcs, fastcgi, uwsgi"}}},
		{name: "uwsgi", c: ctr("web", labels(LabelVhost, "a.test", LabelProtocol, "uwsgi")),
			want: base(func(s *Service) { s.Protocol = ProtoUWSGI })},
		{name: "fastcgi from env, default root", c: ctr("web", vhost("a.test"), withEnv(EnvVirtualProto, "FastCGI")),
			want: base(func(s *Service) { s.Protocol, s.Root = ProtoFastCGI, DefaultFastCGIRoot })},
		{name: "fastcgi with VIRTUAL_ROOT", c: ctr("web", vhost("a.test"), withEnv(EnvVirtualProto, "fastcgi", EnvVirtualRoot, "/app/public")),
			want: base(func(s *Service) { s.Protocol, s.Root = ProtoFastCGI, "/app/public" })},
		{name: "portico.root beats VIRTUAL_ROOT", c: ctr("web", labels(LabelVhost, "a.test", LabelProtocol, "fastcgi", LabelRoot, "/srv"), withEnv(EnvVirtualRoot, "/app")),
			want:  base(func(s *Service) { s.Protocol, s.Root = ProtoFastCGI, "/srv" }),
			probs: []wantProblem{{W, EnvVirtualRoot, `overridden by portico.root="/srv"`}}},
		{name: "root without fastcgi is ignored", c: ctr("web", labels(LabelVhost, "a.test", LabelRoot, "/srv")),
			want: base(nil), probs: []wantProblem{{W, LabelRoot, "only the fastcgi protocol has a document root"}}},
		{name: "root relative", c: ctr("web", labels(LabelVhost, "a.test", LabelProtocol, "fastcgi", LabelRoot, "srv/www")), want: rejected,
			probs: []wantProblem{{E, LabelRoot, "not an absolute path"}}},
		{name: "root with dot-dot", c: ctr("web", labels(LabelVhost, "a.test", LabelProtocol, "fastcgi", LabelRoot, "/srv/../etc")), want: rejected,
			probs: []wantProblem{{E, LabelRoot, `".." path segment`}}},
		{name: "root with a variable", c: ctr("web", labels(LabelVhost, "a.test", LabelProtocol, "fastcgi", LabelRoot, "/srv/$host")), want: rejected,
			probs: []wantProblem{{E, LabelRoot, "may hold only"}}},
		{name: "root with a semicolon and brace", c: ctr("web", labels(LabelVhost, "a.test", LabelProtocol, "fastcgi", LabelRoot, "/srv;}")), want: rejected,
			probs: []wantProblem{{E, LabelRoot, "may hold only"}}},
		{name: "root with a tab (table field)", c: ctr("web", labels(LabelVhost, "a.test", LabelProtocol, "fastcgi", LabelRoot, "/srv\troot=/x")), want: rejected,
			probs: []wantProblem{{E, LabelRoot, "may hold only"}}},
		{name: "protocol with Kelvin sign is not folded", c: ctr("web", labels(LabelVhost, "a.test", LabelHTTPS, "bot\u0126")), want: rejected,
			probs: []wantProblem{{E, LabelHTTPS, "want one of"}}},
		{name: "https both", c: ctr("web", labels(LabelVhost, "a.test", LabelHTTPS, "Both")),
			want: base(func(s *Service) { s.HTTPS = HTTPSBoth })},
		{name: "https off: no certificate", c: ctr("web", labels(LabelVhost, "a.test", LabelHTTPS, "off")),
			want: base(func(s *Service) { s.HTTPS = HTTPSOff; s.CertHosts = nil })},
		{name: "https invalid", c: ctr("web", labels(LabelVhost, "a.test", LabelHTTPS, "on")), want: rejected,
			probs: []wantProblem{{E, LabelHTTPS, "want one of auto, redirect, both, off"}}},
		{name: "hsts true", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "TRUE")),
			want: base(func(s *Service) { s.HSTS = HSTS{MaxAge: DefaultHSTSMaxAge} })},
		{name: "hsts seconds", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "600")),
			want: base(func(s *Service) { s.HSTS = HSTS{MaxAge: 600} })},
		{name: "hsts 1 is one second", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "1")),
			want: base(func(s *Service) { s.HSTS = HSTS{MaxAge: 1} })},
		{name: "hsts no", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "no")), want: base(nil)},
		{name: "hsts 0", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "0")), want: base(nil)},
		{name: "hsts negative", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "-1")), want: rejected,
			probs: []wantProblem{{E, LabelHSTS, "max-age"}}},
		{name: "hsts too large", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "2147483648")), want: rejected,
			probs: []wantProblem{{E, LabelHSTS, "max-age"}}},
		{name: "hsts with https off ignored", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "true", LabelHTTPS, "off")),
			want:  base(func(s *Service) { s.HTTPS = HTTPSOff; s.CertHosts = nil }),
			probs: []wantProblem{{W, LabelHSTS, "only sent over HTTPS"}}},
		// nginx-proxy's HTTPS_METHOD and HSTS, and full HSTS header values.
		{name: "HTTPS_METHOD redirect", c: ctr("web", vhost("a.test"), withEnv(EnvHTTPSMethod, "redirect")),
			want: base(func(s *Service) { s.HTTPS = HTTPSRedirect })},
		{name: "HTTPS_METHOD noredirect is both", c: ctr("web", vhost("a.test"), withEnv(EnvHTTPSMethod, "NoRedirect")),
			want: base(func(s *Service) { s.HTTPS = HTTPSBoth })},
		{name: "HTTPS_METHOD nohttps is off", c: ctr("web", vhost("a.test"), withEnv(EnvHTTPSMethod, "nohttps")),
			want: base(func(s *Service) { s.HTTPS = HTTPSOff; s.CertHosts = nil })},
		{name: "HTTPS_METHOD nohttp is redirect with a warning", c: ctr("web", vhost("a.test"), withEnv(EnvHTTPSMethod, "nohttp")),
			want:  base(func(s *Service) { s.HTTPS = HTTPSRedirect }),
			probs: []wantProblem{{W, EnvHTTPSMethod, "nohttp is not supported"}}},
		{name: "HTTPS_METHOD portico value is invalid", c: ctr("web", vhost("a.test"), withEnv(EnvHTTPSMethod, "both")), want: rejected,
			probs: []wantProblem{{E, EnvHTTPSMethod, "redirect, noredirect, nohttps"}}},
		{name: "portico.https beats HTTPS_METHOD", c: ctr("web", labels(LabelVhost, "a.test", LabelHTTPS, "redirect"), withEnv(EnvHTTPSMethod, "nohttps")),
			want:  base(func(s *Service) { s.HTTPS = HTTPSRedirect }),
			probs: []wantProblem{{W, EnvHTTPSMethod, "overridden by portico.https"}}},
		{name: "HTTPS_METHOD that means portico.https's value is not warned about", c: ctr("web", labels(LabelVhost, "a.test", LabelHTTPS, "both"), withEnv(EnvHTTPSMethod, "noredirect")),
			want: base(func(s *Service) { s.HTTPS = HTTPSBoth })},
		{name: "HSTS that means portico.hsts's value is not warned about", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "86400"), withEnv(EnvHSTS, "max-age=86400")),
			want: base(func(s *Service) { s.HSTS = HSTS{MaxAge: 86400} })},
		{name: "HSTS env full value", c: ctr("web", vhost("a.test"), withEnv(EnvHSTS, "max-age=86400; includeSubDomains; preload")),
			want: base(func(s *Service) { s.HSTS = HSTS{MaxAge: 86400, IncludeSubDomains: true, Preload: true} })},
		{name: "HSTS env off", c: ctr("web", vhost("a.test"), withEnv(EnvHSTS, "off")), want: base(nil)},
		{name: "hsts header any order and case, no spaces", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "PRELOAD;Max-Age=60")),
			want: base(func(s *Service) { s.HSTS = HSTS{MaxAge: 60, Preload: true} })},
		{name: "hsts header max-age only", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "max-age=600")),
			want: base(func(s *Service) { s.HSTS = HSTS{MaxAge: 600} })},
		{name: "hsts header max-age 0 is off", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "max-age=0; includeSubDomains")), want: base(nil)},
		{name: "portico.hsts beats HSTS", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "600"), withEnv(EnvHSTS, "max-age=1")),
			want:  base(func(s *Service) { s.HSTS = HSTS{MaxAge: 600} }),
			probs: []wantProblem{{W, EnvHSTS, "overridden by portico.hsts"}}},
		{name: "HSTS env with HTTPS_METHOD nohttps ignored", c: ctr("web", vhost("a.test"), withEnv(EnvHSTS, "max-age=60", EnvHTTPSMethod, "nohttps")),
			want:  base(func(s *Service) { s.HTTPS = HTTPSOff; s.CertHosts = nil }),
			probs: []wantProblem{{W, EnvHSTS, "only sent over HTTPS"}}},
		{name: "hsts header without max-age", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "includeSubDomains; preload")), want: rejected,
			probs: []wantProblem{{E, LabelHSTS, "no max-age"}}},
		{name: "hsts header unknown directive", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "max-age=60; foo")), want: rejected,
			probs: []wantProblem{{E, LabelHSTS, "directive other than"}}},
		{name: "hsts header quoted max-age", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, `max-age="60"`)), want: rejected,
			probs: []wantProblem{{E, LabelHSTS, "decimal seconds"}}},
		{name: "hsts header max-age over the cap", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "max-age=2147483648")), want: rejected,
			probs: []wantProblem{{E, LabelHSTS, "decimal seconds"}}},
		{name: "hsts header duplicate directive", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "max-age=60; preload; preload")), want: rejected,
			probs: []wantProblem{{E, LabelHSTS, "twice"}}},
		{name: "hsts header empty directive", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "max-age=60;; preload")), want: rejected,
			probs: []wantProblem{{E, LabelHSTS, "directive other than"}}},
		{name: "hsts header injection", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "max-age=60\"; add_header X y")), want: rejected,
			probs: []wantProblem{{E, LabelHSTS, "max-age"}}},
		{name: "hsts header tab", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "max-age=60;\tpreload")), want: rejected,
			probs: []wantProblem{{E, LabelHSTS, "directive other than"}}},
		{name: "hsts header non-ASCII", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "max-age=60; pre\u212aload")), want: rejected,
			probs: []wantProblem{{E, LabelHSTS, "directive other than"}}},
		{name: "hsts bare preload", c: ctr("web", labels(LabelVhost, "a.test", LabelHSTS, "preload")), want: rejected,
			probs: []wantProblem{{E, LabelHSTS, "header value"}}},

		// nginx-proxy/acme-companion variables Portico does not read.
		{name: "unread nginx-proxy env warned", c: ctr("web", vhost("a.test"), withEnv("VIRTUAL_HOST_MULTIPORTS", "x", "LETSENCRYPT_EMAIL", "a@b.test", "ZEROSSL_API_KEY", SecretEnvMarker, "SSL_POLICY", " ")),
			want: base(nil),
			probs: []wantProblem{{W, "LETSENCRYPT_EMAIL", "not supported by Portico"}, {W, "VIRTUAL_HOST_MULTIPORTS", "not supported by Portico"},
				{W, "ZEROSSL_API_KEY", "not supported by Portico"}}},

		// Paths (paths.go, package pathprefix).
		{name: "path label", c: ctr("web", labels(LabelVhost, "a.test", LabelPath, "/api/v2/")),
			want: base(func(s *Service) { s.Path = "/api/v2/" })},
		{name: "path / is no path", c: ctr("web", labels(LabelVhost, "a.test", LabelPath, "/")),
			want: base(nil)},
		{name: "path and strip", c: ctr("web", labels(LabelVhost, "a.test", LabelPath, "/api", LabelStripPath, "true")),
			want: base(func(s *Service) { s.Path = "/api"; s.Strip = true })},
		{name: "VIRTUAL_PATH and VIRTUAL_DEST", c: ctr("web", vhost("a.test"), withEnv(EnvVirtualPath, "/app1/", EnvVirtualDest, "/")),
			want: base(func(s *Service) { s.Path = "/app1/"; s.Dest = "/" })},
		{name: "path label beats VIRTUAL_PATH", c: ctr("web", labels(LabelVhost, "a.test", LabelPath, "/a"), withEnv(EnvVirtualPath, "/b")),
			want:  base(func(s *Service) { s.Path = "/a" }),
			probs: []wantProblem{{W, EnvVirtualPath, "overridden by portico.path"}}},
		{name: "strip beats VIRTUAL_DEST", c: ctr("web", labels(LabelVhost, "a.test", LabelPath, "/a", LabelStripPath, "1"), withEnv(EnvVirtualDest, "/x")),
			want:  base(func(s *Service) { s.Path = "/a"; s.Strip = true }),
			probs: []wantProblem{{W, EnvVirtualDest, "strips the prefix"}}},
		{name: "strip on / ignored", c: ctr("web", labels(LabelVhost, "a.test", LabelStripPath, "true")),
			want:  base(nil),
			probs: []wantProblem{{W, LabelStripPath, "no prefix to strip"}}},
		{name: "VIRTUAL_DEST on /", c: ctr("web", vhost("a.test"), withEnv(EnvVirtualDest, "/base/")),
			want: base(func(s *Service) { s.Dest = "/base/" })},
		{name: "regex path refused", c: ctr("web", vhost("a.test"), withEnv(EnvVirtualPath, "~^/(a|b)/")), want: rejected,
			probs: []wantProblem{{E, EnvVirtualPath, "regular expressions are not supported"}}},
		{name: "traversal path refused", c: ctr("web", labels(LabelVhost, "a.test", LabelPath, "/a/../b")), want: rejected,
			probs: []wantProblem{{E, LabelPath, `".." segment`}}},
		{name: "path with ; refused", c: ctr("web", labels(LabelVhost, "a.test", LabelPath, "/a;b")), want: rejected,
			probs: []wantProblem{{E, LabelPath, "not allowed"}}},
		{name: "relative dest refused", c: ctr("web", vhost("a.test"), withEnv(EnvVirtualPath, "/a", EnvVirtualDest, "x")), want: rejected,
			probs: []wantProblem{{E, EnvVirtualDest, "must start with /"}}},
		{name: "strip not a boolean", c: ctr("web", labels(LabelVhost, "a.test", LabelPath, "/a", LabelStripPath, "on")), want: rejected,
			probs: []wantProblem{{E, LabelStripPath, "not a boolean"}}},

		{name: "default yes", c: ctr("web", labels(LabelVhost, "a.test", LabelDefault, "YES")),
			want: base(func(s *Service) { s.Default = true })},
		{name: "default on is not a boolean", c: ctr("web", labels(LabelVhost, "a.test", LabelDefault, "on")), want: rejected,
			probs: []wantProblem{{E, LabelDefault, "not a boolean"}}},

		// Legacy labels, env and precedence.
		{name: "legacy labels", c: ctr("web", labels(LegacyVhost, "a.test", LegacyPort, "3000", LegacyProtocol, "https", LegacyDefault, "true")),
			want: base(func(s *Service) { s.Port = 3000; s.Addr = "172.18.0.2:3000"; s.Protocol = ProtoHTTPS; s.Default = true })},
		{name: "nginx-proxy env", c: ctr("web", nil, withEnv(EnvVirtualHost, "a.test", EnvVirtualPort, "3000", EnvVirtualProto, "grpc")),
			want: base(func(s *Service) { s.Port = 3000; s.Addr = "172.18.0.2:3000"; s.Protocol = ProtoGRPC })},
		{name: "portico beats legacy beats env, differing values warned",
			c: ctr("web", labels(LabelVhost, "a.test", LegacyVhost, "b.test", LegacyPort, "81", LabelProtocol, "http"),
				withEnv(EnvVirtualHost, "c.test", EnvVirtualPort, "82", EnvVirtualProto, "http")),
			want: base(func(s *Service) { s.Port = 81; s.Addr = "172.18.0.2:81" }),
			probs: []wantProblem{
				{W, LegacyVhost, `overridden by portico.vhost="a.test"`},
				{W, EnvVirtualHost, `overridden by portico.vhost="a.test"`},
				{W, EnvVirtualPort, `overridden by com.chameth.proxy="81"`},
			}},
		{name: "overridden value is not validated", c: ctr("web", labels(LabelPort, "80", LabelVhost, "a.test"), withEnv(EnvVirtualPort, "junk")),
			want:  base(nil),
			probs: []wantProblem{{W, EnvVirtualPort, "overridden"}}},
		{name: "same value in several forms: no warning", c: ctr("web", labels(LabelVhost, "a.test", LegacyVhost, "a.test"), withEnv(EnvVirtualHost, "a.test")),
			want: base(nil)},
		{name: "empty portico label falls through to env", c: ctr("web", labels(LabelVhost, ""), withEnv(EnvVirtualHost, "a.test")),
			want: base(nil), probs: []wantProblem{{W, LabelVhost, "empty value ignored"}}},
		{name: "bad env value named", c: ctr("web", nil, withEnv(EnvVirtualHost, "a.test", EnvVirtualPort, "http")), want: rejected,
			probs: []wantProblem{{E, EnvVirtualPort, "not a port"}}},

		// Certificates.
		{name: "LETSENCRYPT_HOST names the certificate", c: ctr("web", vhost("a.test b.test"), withEnv(EnvLetsEncryptHost, "B.test")),
			want: base(func(s *Service) { s.Hosts = []string{"a.test", "b.test"}; s.CertHosts = []string{"b.test"} })},
		{name: "ACME_HOST", c: ctr("web", vhost("a.test b.test"), withEnv(EnvACMEHost, "b.test,a.test")),
			want: base(func(s *Service) { s.Hosts = []string{"a.test", "b.test"}; s.CertHosts = []string{"b.test", "a.test"} })},
		{name: "LETSENCRYPT_HOST beats ACME_HOST", c: ctr("web", vhost("a.test b.test"), withEnv(EnvLetsEncryptHost, "a.test", EnvACMEHost, "b.test")),
			want:  base(func(s *Service) { s.Hosts = []string{"a.test", "b.test"}; s.CertHosts = []string{"a.test"} }),
			probs: []wantProblem{{W, EnvACMEHost, "overridden by LETSENCRYPT_HOST"}}},
		{name: "certificate name outside the vhosts rejects the container", c: ctr("web", vhost("a.test"), withEnv(EnvLetsEncryptHost, "a.test,Z.test")),
			want:  rejected,
			probs: []wantProblem{{E, EnvLetsEncryptHost, `"z.test" is not one of this container's vhosts`}}},
		{name: "bad certificate name", c: ctr("web", vhost("a.test"), withEnv(EnvLetsEncryptHost, "a.test;")), want: rejected,
			probs: []wantProblem{{E, EnvLetsEncryptHost, "not a valid host name"}}},
		{name: "https off drops LETSENCRYPT_HOST", c: ctr("web", labels(LabelVhost, "a.test", LabelHTTPS, "off"), withEnv(EnvLetsEncryptHost, "a.test")),
			want: base(func(s *Service) { s.HTTPS = HTTPSOff; s.CertHosts = nil })},

		// Unknown labels.
		{name: "typo suggestion", c: ctr("web", labels(LabelVhost, "a.test", "portico.vhosts", "b.test", "portico.PORT", "1")),
			want: base(nil),
			probs: []wantProblem{
				{W, "portico.vhosts", "did you mean portico.vhost?"},
				{W, "portico.PORT", "did you mean portico.port?"},
			}},
		{name: "unknown label without suggestion", c: ctr("web", labels(LabelVhost, "a.test", "portico.something-else", "x")),
			want: base(nil), probs: []wantProblem{{W, "portico.something-else", "unknown label"}}},
		{name: "typo without vhost still warned", c: ctr("web", labels("portico.vhots", "a.test")),
			want: Service{}, probs: []wantProblem{{W, "portico.vhots", "did you mean portico.vhost?"}}},
		{name: "other prefixes ignored", c: ctr("web", labels(LabelVhost, "a.test", "com.example.x", "y", "porticox", "z")),
			want: base(nil)},

		// Networks and addresses.
		{name: "proxy network preferred", opts: Options{Network: "front"},
			c:    ctr("web", vhost("a.test"), withNets(map[string]store.Network{"back": {IPv4: "10.0.0.2"}, "front": {IPv4: "10.1.0.2"}})),
			want: base(func(s *Service) { s.Network = "front"; s.Addr = "10.1.0.2:80" })},
		{name: "only network used when not on the proxy's", opts: Options{Network: "front"},
			c:    ctr("web", vhost("a.test")),
			want: base(nil)},
		// nginx in a container on "front" alone: the route stays, with no
		// upstream (503 at once), and the problem names the network.
		{name: "not on the proxy's network when nginx reaches it only", opts: Options{Network: "front", NetworkOnly: true},
			c:     ctr("web", vhost("a.test")),
			want:  base(func(s *Service) { s.Network = "front"; s.Addr = ""; s.Live = false }),
			probs: []wantProblem{{W, LabelNetwork, `not on the proxy's network "front" (it is on proxy), so nginx cannot reach it and its vhosts answer 503; join it: docker network connect front web`}}},
		{name: "several networks, none the proxy's, nginx reaches it only", opts: Options{Network: "front", NetworkOnly: true},
			c:     ctr("web", vhost("a.test"), withNets(map[string]store.Network{"back": {IPv4: "10.0.0.2"}, "db": {IPv4: "10.1.0.2"}})),
			want:  base(func(s *Service) { s.Network = "front"; s.Addr = ""; s.Live = false }),
			probs: []wantProblem{{W, LabelNetwork, "docker network connect front web"}}},
		{name: "ambiguous networks are an error", opts: Options{Network: "front"},
			c:    ctr("web", vhost("a.test"), withNets(map[string]store.Network{"back": {IPv4: "10.0.0.2"}, "db": {IPv4: "10.1.0.2"}})),
			want: rejected, probs: []wantProblem{{E, LabelNetwork, "on several networks (back, db)"}}},
		{name: "network label", c: ctr("web", labels(LabelVhost, "a.test", LabelNetwork, "db"),
			withNets(map[string]store.Network{"back": {IPv4: "10.0.0.2"}, "db": {IPv4: "10.1.0.2"}})),
			want: base(func(s *Service) { s.Network = "db"; s.Addr = "10.1.0.2:80" })},
		{name: "network label not joined", c: ctr("web", labels(LabelVhost, "a.test", LabelNetwork, "other")), want: rejected,
			probs: []wantProblem{{E, LabelNetwork, "not on this network (it is on proxy)"}}},
		{name: "network label invalid", c: ctr("web", labels(LabelVhost, "a.test", LabelNetwork, "a b")), want: rejected,
			probs: []wantProblem{{E, LabelNetwork, "not a valid Docker network name"}}},
		{name: "network label kept for a stopped container without networks",
			c:    ctr("web", labels(LabelVhost, "a.test", LabelNetwork, "db"), withNets(nil), withState("exited", "")),
			want: base(func(s *Service) { s.Network = "db"; s.Addr = ""; s.Live = false })},
		{name: "IPv6 only", c: ctr("web", vhost("a.test"), withNets(map[string]store.Network{"proxy": {IPv6: "FD00::2"}})),
			want: base(func(s *Service) { s.Addr = "[fd00::2]:80" })},
		{name: "IPv4 preferred", c: ctr("web", vhost("a.test"), withNets(map[string]store.Network{"proxy": {IPv4: "172.18.0.2", IPv6: "fd00::2"}})),
			want: base(nil)},
		{name: "unparseable IPv4", c: ctr("web", vhost("a.test"), withIP("172.18.0.2;")), want: rejected,
			probs: []wantProblem{{E, "", `IPv4 address "172.18.0.2;"`}}},
		{name: "IPv6 in the IPv4 field", c: ctr("web", vhost("a.test"), withIP("fd00::2")), want: rejected,
			probs: []wantProblem{{E, "", "IPv4 address"}}},
		{name: "zoned IPv6", c: ctr("web", vhost("a.test"), withNets(map[string]store.Network{"proxy": {IPv6: "fe80::1%eth0"}})), want: rejected,
			probs: []wantProblem{{E, "", "IPv6 address"}}},
		{name: "unspecified address", c: ctr("web", vhost("a.test"), withIP("0.0.0.0")), want: rejected,
			probs: []wantProblem{{E, "", "IPv4 address"}}},
		{name: "bad IPv6 beside a good IPv4", c: ctr("web", vhost("a.test"), withNets(map[string]store.Network{"proxy": {IPv4: "172.18.0.2", IPv6: "zz"}})), want: rejected,
			probs: []wantProblem{{E, "", "IPv6 address"}}},
		{name: "invalid network name in the record", c: ctr("web", vhost("a.test"), withNets(map[string]store.Network{"a\nb": {IPv4: "172.18.0.2"}})), want: rejected,
			probs: []wantProblem{{E, "", "network name"}}},

		// States.
		{name: "stopped: known, not live", c: ctr("web", vhost("a.test"), withNets(map[string]store.Network{"proxy": {}}), withState("exited", "")),
			want: base(func(s *Service) { s.Addr = ""; s.Live = false })},
		{name: "stopped without networks", c: ctr("web", vhost("a.test"), withNets(nil), withState("exited", "")),
			want: base(func(s *Service) { s.Network = ""; s.Addr = ""; s.Live = false })},
		{name: "running without address warns", c: ctr("web", vhost("a.test"), withNets(map[string]store.Network{"host": {}})),
			want:  base(func(s *Service) { s.Network = "host"; s.Addr = ""; s.Live = false }),
			probs: []wantProblem{{W, "", "no address"}}},
		{name: "paused keeps address, not live", c: ctr("web", vhost("a.test"), withState("paused", "")),
			want: base(func(s *Service) { s.Live = false })},
		{name: "unhealthy", c: ctr("web", vhost("a.test"), withState("running", "unhealthy")),
			want: base(func(s *Service) { s.Live = false })},
		{name: "starting", c: ctr("web", vhost("a.test"), withState("running", "starting")),
			want: base(func(s *Service) { s.Live = false })},
		{name: "healthy", c: ctr("web", vhost("a.test"), withState("running", "healthy")), want: base(nil)},
		{name: "stopping keeps address, not live", c: ctr("web", vhost("a.test"), isStopping),
			want: base(func(s *Service) { s.Live = false })},
		{name: "healthy but stopping, not live", c: ctr("web", vhost("a.test"), withState("running", "healthy"), isStopping),
			want: base(func(s *Service) { s.Live = false })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, probs := ParseService(tt.c, tt.opts)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("service\n got %+v\nwant %+v", got, tt.want)
			}
			checkProblems(t, probs, tt.probs)
			for _, p := range probs {
				if p.Container != strings.TrimPrefix(tt.c.Name, "/") || p.ContainerID != tt.c.ID || p.Node != tt.c.Host {
					t.Errorf("problem does not name the container: %+v", p)
				}
			}
		})
	}
}

// longName is a valid host name of exactly n bytes.
func longName(n int) string {
	var b strings.Builder
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		l := min(63, n-b.Len())
		if l < 1 {
			break
		}
		b.WriteString(strings.Repeat("a", l))
	}
	s := b.String()
	// the last label must not be numeric and must not be cut to nothing
	return strings.TrimSuffix(s[:n-1], ".") + "b"
}

func TestPortValues(t *testing.T) {
	tests := map[string]int{
		"80": 80, "1": 1, "65535": 65535,
		"0": 0, "65536": 0, "abc": 0, "-1": 0, "+80": 0, " 80": 0, "80 ": 0, "080": 0,
		"1e3": 0, "0x50": 0, "8080/tcp": 0, "８０": 0, "99999999999999999999": 0, "": 0,
	}
	for in, want := range tests {
		got, err := parsePort(in)
		if got != want || (err == nil) != (want != 0) {
			t.Errorf("parsePort(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestBoolValues(t *testing.T) {
	for _, in := range []string{"true", "TRUE", "True", "1", "yes", "YES"} {
		if v, err := parseBool(in); err != nil || !v {
			t.Errorf("parseBool(%q) = %v, %v", in, v, err)
		}
	}
	for _, in := range []string{"false", "FALSE", "0", "no", "No"} {
		if v, err := parseBool(in); err != nil || v {
			t.Errorf("parseBool(%q) = %v, %v", in, v, err)
		}
	}
	for _, in := range []string{"", "on", "off", "y", "n", "t", "f", " true", "true ", "2", "tru\u212A"} {
		if _, err := parseBool(in); err == nil {
			t.Errorf("parseBool(%q) accepted", in)
		}
	}
}

func TestProblemError(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{Container: "web", Label: LabelPort, Value: "a\nb", Message: "bad"}, `container "web": label portico.port="a\nb": bad`},
		{Problem{Container: "web", Label: EnvVirtualPort, Value: "x", Message: "bad"}, `container "web": env VIRTUAL_PORT="x": bad`},
		{Problem{Container: "web", Label: "portico.a\nb", Value: "x", Message: "unknown label"}, `container "web": label "portico.a\nb"="x": unknown label`},
		{Problem{Container: "w\"eb", Message: "m"}, `container "w\"eb": m`},
	}
	for _, tt := range tests {
		if got := tt.p.Error(); got != tt.want {
			t.Errorf("Error() = %s; want %s", got, tt.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"portico.vhost", "portico.vhots", 2}, {"portico.port", "portico.port", 0}}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d; want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
