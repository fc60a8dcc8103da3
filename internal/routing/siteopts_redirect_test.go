package routing

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/portico/portico/internal/siteopts"
	"github.com/portico/portico/internal/store"
)

func TestSiteoptsLabelsMatch(t *testing.T) {
	for mine, theirs := range map[string]string{
		LabelRedirectFrom: siteopts.LabelRedirectFrom, LabelRedirectTo: siteopts.LabelRedirectTo,
		LabelRedirectCode: siteopts.LabelRedirectCode, LabelRedirectKeepPath: siteopts.LabelRedirectKeepPath,
		LabelSecurityHeaders: siteopts.LabelSecurityHeaders, LabelResponseHeader: siteopts.LabelResponseHeader,
		LabelRequestHeader: siteopts.LabelRequestHeader,
	} {
		if mine != theirs {
			t.Errorf("routing %q, siteopts %q", mine, theirs)
		}
	}
}

func TestParseRedirectAndHeaderOptions(t *testing.T) {
	E, W := SeverityError, SeverityWarning
	tests := []struct {
		name   string
		labels map[string]string
		want   siteopts.Options
		cert   []string
		probs  []wantProblem
	}{
		{name: "redirect-to defaults", labels: labels(LabelVhost, "a.test", LabelRedirectTo, "HTTPS://New.Example/x"),
			want: siteopts.Options{Redirect: siteopts.Redirect{To: "https://new.example/x"}}},
		{name: "redirect-to code and keep-path", labels: labels(LabelVhost, "a.test", LabelRedirectTo, "http://n.example:8080/", LabelRedirectCode, "307", LabelRedirectKeepPath, "yes"),
			want: siteopts.Options{Redirect: siteopts.Redirect{To: "http://n.example:8080/", Code: 307, KeepPath: true}}},
		{name: "code without to", labels: labels(LabelVhost, "a.test", LabelRedirectCode, "301"),
			probs: []wantProblem{{E, LabelRedirectCode, "without portico.redirect-to"}}},
		{name: "keep-path without to", labels: labels(LabelVhost, "a.test", LabelRedirectKeepPath, "true"),
			probs: []wantProblem{{E, LabelRedirectKeepPath, "without portico.redirect-to"}}},
		{name: "bad code", labels: labels(LabelVhost, "a.test", LabelRedirectTo, "https://n.example/", LabelRedirectCode, "303"),
			probs: []wantProblem{{E, LabelRedirectCode, "want one of 301, 302, 307, 308"}}},
		{name: "dollar", labels: labels(LabelVhost, "a.test", LabelRedirectTo, "https://n.example/$host"),
			probs: []wantProblem{{E, LabelRedirectTo, "%24"}}},
		{name: "keep-path with a query", labels: labels(LabelVhost, "a.test", LabelRedirectTo, "https://n.example/?a=1", LabelRedirectKeepPath, "true"),
			probs: []wantProblem{{E, LabelRedirectTo, "no query"}}},
		{name: "redirect-from", labels: labels(LabelVhost, "a.test b.test", LabelRedirectFrom, "www.a.test, WWW.B.test www.a.test"),
			want: siteopts.Options{Redirect: siteopts.Redirect{From: []string{"www.a.test", "www.b.test"}}},
			cert: []string{"a.test", "b.test", "www.a.test", "www.b.test"}},
		{name: "redirect-from own vhost and wildcard", labels: labels(LabelVhost, "a.test", LabelRedirectFrom, "a.test, *.a.test"),
			probs: []wantProblem{{E, LabelRedirectFrom, "also a vhost"}, {E, LabelRedirectFrom, "wildcard"}}},
		{name: "redirect-from bad name", labels: labels(LabelVhost, "a.test", LabelRedirectFrom, "bad_name.test"),
			probs: []wantProblem{{E, LabelRedirectFrom, "host name rejected"}}},
		{name: "headers", labels: labels(LabelVhost, "a.test", LabelSecurityHeaders, "true",
			LabelResponseHeader+"X-B", "2", LabelResponseHeader+"x-a", "", LabelRequestHeader+"X-Tenant", `a "$b" \ c`),
			want: siteopts.Options{Headers: siteopts.Headers{Security: true,
				Response: []siteopts.Header{{Name: "x-a", Value: ""}, {Name: "X-B", Value: "2"}},
				Request:  []siteopts.Header{{Name: "X-Tenant", Value: `a "$b" \ c`}}}}},
		{name: "refused names", labels: labels(LabelVhost, "a.test", LabelRequestHeader+"Host", "x", LabelRequestHeader+"X-Forwarded-For", "x",
			LabelResponseHeader+"Content-Length", "1", LabelResponseHeader+"X_Y", "1", LabelResponseHeader+"X$Y", "1", LabelResponseHeader+"", "1",
			LabelRequestHeader+"Transfer-Encoding", "chunked", LabelResponseHeader+"X-Accel-Redirect", "/x"),
			probs: []wantProblem{{E, LabelRequestHeader + "Host", "framing"}, {E, LabelRequestHeader + "X-Forwarded-For", "set by Portico"},
				{E, LabelResponseHeader + "Content-Length", "framing"}, {E, LabelResponseHeader + "X_Y", "only letters"},
				{E, LabelResponseHeader + "X$Y", "only letters"}, {E, LabelResponseHeader, "1-64 bytes"},
				{E, LabelRequestHeader + "Transfer-Encoding", "framing"}, {E, LabelResponseHeader + "X-Accel-Redirect", "X-Accel"}}},
		{name: "bad values", labels: labels(LabelVhost, "a.test", LabelResponseHeader+"X-A", "a\r\nX-Evil: 1", LabelResponseHeader+"X-B", "tab\there",
			LabelResponseHeader+"X-C", " lead", LabelResponseHeader+"X-D", "é", LabelResponseHeader+"X-E", strings.Repeat("a", 1025)),
			probs: []wantProblem{{E, LabelResponseHeader + "X-A", "printable"}, {E, LabelResponseHeader + "X-B", "printable"},
				{E, LabelResponseHeader + "X-C", "space"}, {E, LabelResponseHeader + "X-D", "printable"}, {E, LabelResponseHeader + "X-E", "over 1024"}}},
		{name: "case duplicates", labels: labels(LabelVhost, "a.test", LabelResponseHeader+"X-A", "1", LabelResponseHeader+"x-a", "2"),
			probs: []wantProblem{{E, LabelResponseHeader + "x-a", "also set by"}}},
		{name: "unknown look-alike still warned", labels: labels(LabelVhost, "a.test", "portico.redirect-tO", "x"),
			probs: []wantProblem{{W, "portico.redirect-tO", "did you mean portico.redirect-to"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, probs := ParseService(ctr("c", tt.labels), Options{Network: "proxy"})
			checkProblems(t, probs, tt.probs)
			if hasError(probs) {
				return
			}
			if !reflect.DeepEqual(svc.Site, tt.want) {
				t.Errorf("site %+v, want %+v", svc.Site, tt.want)
			}
			if tt.cert != nil && !slices.Equal(svc.CertHosts, tt.cert) {
				t.Errorf("cert hosts %v, want %v", svc.CertHosts, tt.cert)
			}
		})
	}
}

func TestParseHeaderCountBound(t *testing.T) {
	l := labels(LabelVhost, "a.test")
	for i := range siteopts.MaxHeaders + 1 {
		l[LabelResponseHeader+"X-H"+strings.Repeat("a", i)] = "v"
	}
	_, probs := ParseService(ctr("c", l), Options{Network: "proxy"})
	if !hasError(probs) || !strings.Contains(probs[0].Message, "more than 16") {
		t.Errorf("problems %v", probs)
	}
}

func TestRedirectFromAllowList(t *testing.T) {
	al, err := ParseAllowList([]string{"node1=*.tenant1.test"})
	if err != nil {
		t.Fatal(err)
	}
	_, probs := ParseService(ctr("c", labels(LabelVhost, "a.tenant1.test", LabelRedirectFrom, "www.tenant2.test")), Options{Network: "proxy", Allowed: al})
	checkProblems(t, probs, []wantProblem{{SeverityError, LabelRedirectFrom, "--allowed-domains"}})
}

// redirect-from names are claimed like vhosts: the first claimant wins,
// replicas agree, and a name can be a vhost or a redirect, not both.
func TestBuildRedirectFrom(t *testing.T) {
	rev := func(n int64) func(*store.Container) { return func(c *store.Container) { c.CreateRevision = n } }
	a1 := ctr("a1", labels(LabelVhost, "apex.test", LabelRedirectFrom, "www.apex.test"), rev(1))
	a2 := ctr("a2", labels(LabelVhost, "apex.test", LabelRedirectFrom, "www.apex.test"), rev(2), withIP("172.18.0.3"))
	later := ctr("b", labels(LabelVhost, "www.apex.test"), rev(3), withIP("172.18.0.4"))
	other := ctr("c", labels(LabelVhost, "other.test", LabelRedirectFrom, "www.apex.test"), rev(4), withIP("172.18.0.5"))
	res := Build([]store.Container{later, other, a2, a1}, Options{Network: "proxy"})
	var www *Route
	for i := range res.Routes {
		if res.Routes[i].Host == "www.apex.test" {
			www = &res.Routes[i]
		}
	}
	if www == nil || www.Site.Redirect.Host != "apex.test" || len(www.Upstreams) != 0 || !slices.Equal(www.Containers, []string{"a1", "a2"}) {
		t.Fatalf("www route %+v", www)
	}
	checkProblems(t, res.Problems, []wantProblem{
		{SeverityError, LabelVhost, "claim on this vhost rejected: portico.redirect-from"},
		{SeverityError, LabelRedirectFrom, "claim on this name rejected: portico.redirect-from"},
	})
	// The other way round: a vhost claimed first stays a vhost.
	first := ctr("b", labels(LabelVhost, "www.apex.test"), rev(1), withIP("172.18.0.4"))
	a1.CreateRevision = 5
	res = Build([]store.Container{a1, first}, Options{Network: "proxy"})
	for _, r := range res.Routes {
		if r.Host == "www.apex.test" && (r.Site.Redirect.Host != "" || !slices.Equal(r.Containers, []string{"b"})) {
			t.Errorf("www route %+v", r)
		}
	}
	checkProblems(t, res.Problems, []wantProblem{{SeverityError, LabelRedirectFrom, "claim on this name rejected"}})
}

// Options are the first claimant's; a claimant whose options differ is
// rejected for that vhost, naming the label.
func TestBuildSiteOptionsConflict(t *testing.T) {
	a := ctr("a", labels(LabelVhost, "x.test", LabelResponseHeader+"X-A", "1"), func(c *store.Container) { c.CreateRevision = 1 })
	b := ctr("b", labels(LabelVhost, "x.test", LabelResponseHeader+"X-A", "2"), withIP("172.18.0.3"), func(c *store.Container) { c.CreateRevision = 2 })
	res := Build([]store.Container{a, b}, Options{Network: "proxy"})
	checkProblems(t, res.Problems, []wantProblem{{SeverityError, LabelVhost, `portico.response-header.X-A "2" differs from "1"`}})
	if len(res.Routes) != 1 || !slices.Equal(res.Routes[0].Upstreams, []string{"172.18.0.2:80"}) {
		t.Errorf("routes %+v", res.Routes)
	}
}

// siteoptsHostileKeys are the redirect and header labels the hostile
// corpus and FuzzParseService put every value into.
func siteoptsHostileKeys() []string {
	return []string{LabelRedirectFrom, LabelRedirectTo, LabelRedirectCode, LabelRedirectKeepPath, LabelSecurityHeaders,
		LabelResponseHeader + "X-Test", LabelRequestHeader + "X-Test"}
}

var (
	safeURL         = regexp.MustCompile(`^https?://[A-Za-z0-9._~:/?#\[\]@!&'()*+,;=%-]+$`)
	safeHeaderName  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,63}$`)
	safeHeaderValue = regexp.MustCompile(`^([!-~]([ -~]*[!-~])?)?$`)
)

// unsafeSite lists the redirect and header option fields of a route that
// fail their strict pattern.
func unsafeSite(where string, o siteopts.Options) []string {
	var bad []string
	r := o.Redirect
	if r.To != "" && (!safeURL.MatchString(r.To) || len(r.To) > siteopts.MaxRedirectURLBytes) {
		bad = append(bad, fmt.Sprintf("%s redirect-to %q", where, r.To))
	}
	if r.Code != 0 && r.Code != 301 && r.Code != 302 && r.Code != 307 && r.Code != 308 {
		bad = append(bad, fmt.Sprintf("%s redirect code %d", where, r.Code))
	}
	for _, h := range append([]string{r.Host}, r.From...) {
		if h != "" && (!safeHost.MatchString(h) || strings.HasPrefix(h, "*")) {
			bad = append(bad, fmt.Sprintf("%s redirect host %q", where, h))
		}
	}
	for _, l := range [][]siteopts.Header{o.Headers.Response, o.Headers.Request} {
		if len(l) > siteopts.MaxHeaders {
			bad = append(bad, fmt.Sprintf("%s %d headers", where, len(l)))
		}
		for _, h := range l {
			if !safeHeaderName.MatchString(h.Name) || !safeHeaderValue.MatchString(h.Value) || len(h.Value) > siteopts.MaxHeaderValueBytes {
				bad = append(bad, fmt.Sprintf("%s header %q: %q", where, h.Name, h.Value))
			}
		}
	}
	return bad
}
