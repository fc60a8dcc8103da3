package routing

import (
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/siteopts"
	"github.com/portico/portico/internal/store"
)

// safeOptionValue: what an access option may put in the dynamic table and
// the config: no quote, brace, semicolon, space, '$' or control byte.
var safeOptionValue = regexp.MustCompile(`^[A-Za-z0-9.:/,_-]+$`)

// unsafeSiteFields checks every accepted route's option fields.
func unsafeSiteFields(r Result) []string {
	var bad []string
	for _, rt := range r.Routes {
		for _, f := range rt.Site.Fields() {
			// The access options' values; header and redirect values are
			// checked by their own tests (free text, %XX-escaped).
			if !slices.Contains(AccessLabels, LabelPrefix+f.Name) {
				continue
			}
			if !safeOptionValue.MatchString(f.Value) {
				bad = append(bad, fmt.Sprintf("route %s option %s=%q", rt.Host, f.Name, f.Value))
			}
		}
	}
	return bad
}

func TestAccessOptions(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		labels map[string]string
		want   siteopts.Access
		errLbl string
	}{
		{labels: nil, want: siteopts.Access{}},
		{labels: map[string]string{LabelAllow: "10.0.0.0/8, 192.168.1.5,::1,10.0.0.0/8"},
			want: siteopts.Access{Allow: []netip.Prefix{p("10.0.0.0/8"), p("192.168.1.5/32"), p("::1/128")}}},
		{labels: map[string]string{LabelAllow: "10.0.0.1/8"}, errLbl: LabelAllow},
		{labels: map[string]string{LabelAllow: "10.0.0.0/8,"}, errLbl: LabelAllow},
		{labels: map[string]string{LabelAllow: "fe80::1%eth0"}, errLbl: LabelAllow},
		{labels: map[string]string{LabelAllow: "all"}, errLbl: LabelAllow},
		{labels: map[string]string{LabelAuthFile: "users.htpasswd"}, want: siteopts.Access{AuthFile: "users.htpasswd"}},
		{labels: map[string]string{LabelAuthFile: "../etc/shadow"}, errLbl: LabelAuthFile},
		{labels: map[string]string{LabelAuthFile: "a/b"}, errLbl: LabelAuthFile},
		{labels: map[string]string{LabelAuthFile: ".."}, errLbl: LabelAuthFile},
		{labels: map[string]string{LabelMaxBody: "10m"}, want: siteopts.Access{MaxBody: siteopts.Size{Set: true, Bytes: 10 << 20}}},
		{labels: map[string]string{LabelMaxBody: "0"}, want: siteopts.Access{MaxBody: siteopts.Size{Set: true}}},
		{labels: map[string]string{LabelMaxBody: "512K"}, want: siteopts.Access{MaxBody: siteopts.Size{Set: true, Bytes: 512 << 10}}},
		{labels: map[string]string{LabelMaxBody: "10mb"}, errLbl: LabelMaxBody},
		{labels: map[string]string{LabelMaxBody: "17g"}, errLbl: LabelMaxBody},
		{labels: map[string]string{LabelMaxBody: "-1"}, errLbl: LabelMaxBody},
		{labels: map[string]string{LabelTimeout: "90s", LabelConnectTimeout: "500ms"},
			want: siteopts.Access{Timeout: 90 * time.Second, ConnectTimeout: 500 * time.Millisecond}},
		{labels: map[string]string{LabelTimeout: "1m30s"}, want: siteopts.Access{Timeout: 90 * time.Second}},
		{labels: map[string]string{LabelTimeout: "120"}, want: siteopts.Access{Timeout: 120 * time.Second}},
		{labels: map[string]string{LabelTimeout: "0s"}, errLbl: LabelTimeout},
		{labels: map[string]string{LabelTimeout: "2d"}, errLbl: LabelTimeout},
		{labels: map[string]string{LabelConnectTimeout: "25h"}, errLbl: LabelConnectTimeout},
		{labels: map[string]string{LabelConnectTimeout: "5 s"}, errLbl: LabelConnectTimeout},
		{labels: map[string]string{LabelRate: "10r/s"}, want: siteopts.Access{Rate: siteopts.Rate{N: 10, Per: time.Second}, Burst: -1}},
		{labels: map[string]string{LabelRate: "30r/m", LabelRateBurst: "0"}, want: siteopts.Access{Rate: siteopts.Rate{N: 30, Per: time.Minute}}},
		{labels: map[string]string{LabelRate: "10r/h"}, errLbl: LabelRate},
		{labels: map[string]string{LabelRate: "0r/s"}, errLbl: LabelRate},
		{labels: map[string]string{LabelRate: "10"}, errLbl: LabelRate},
		{labels: map[string]string{LabelRateBurst: "5"}, errLbl: LabelRateBurst},
		{labels: map[string]string{LabelRate: "1r/s", LabelRateBurst: "x"}, errLbl: LabelRateBurst},
	} {
		c := ctr("web", map[string]string{LabelVhost: "a.test"}, withIP("172.18.0.2"))
		for k, v := range tc.labels {
			c.Labels[k] = v
		}
		svc, probs := ParseService(c, Options{Network: "proxy"})
		if tc.errLbl != "" {
			if !hasError(probs) || probs[0].Label != tc.errLbl || probs[0].Value != tc.labels[tc.errLbl] || probs[0].Container != "web" {
				t.Errorf("%v: problems %v, want an error naming web, %s and its value", tc.labels, probs, tc.errLbl)
			}
			continue
		}
		if hasError(probs) {
			t.Errorf("%v: %v", tc.labels, probs)
			continue
		}
		if !reflect.DeepEqual(svc.Site.Access, tc.want) {
			t.Errorf("%v: got %+v, want %+v", tc.labels, svc.Site.Access, tc.want)
		}
	}
}

func TestAccessFieldsAndConflict(t *testing.T) {
	a := ctr("a", map[string]string{LabelVhost: "s.test", LabelAllow: "10.0.0.0/8", LabelMaxBody: "10m",
		LabelRate: "10r/s", LabelTimeout: "90s", LabelConnectTimeout: "2s", LabelAuthFile: "u"}, withIP("172.18.0.2"))
	got := fmt.Sprint(mustParse(t, a).Site.Fields())
	want := "[{allow 10.0.0.0/8} {auth-file u} {connect-timeout 2000} {max-body 10485760} {rate 600/10} {timeout 90000}]"
	if got != want {
		t.Errorf("fields %s, want %s", got, want)
	}
	// A second claimant with other options is refused for the vhost and
	// the problem names the label; the first keeps its options.
	b := ctr("b", map[string]string{LabelVhost: "s.test", LabelAllow: "10.0.0.0/8", LabelMaxBody: "20m",
		LabelRate: "10r/s", LabelTimeout: "90s", LabelConnectTimeout: "2s", LabelAuthFile: "u"}, withIP("172.18.0.3"))
	res := Build([]store.Container{a, b}, Options{Network: "proxy"})
	if len(res.Routes) != 1 || res.Routes[0].Site.MaxBody.Bytes != 10<<20 || len(res.Routes[0].Upstreams) != 1 {
		t.Fatalf("routes %+v", res.Routes)
	}
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Error(), LabelMaxBody) || res.Problems[0].Container != "b" {
		t.Errorf("problems %v", res.Problems)
	}
	for _, l := range AccessLabels {
		if !strings.HasPrefix(l, siteopts.LabelPrefix) {
			t.Errorf("label %s: not siteopts.LabelPrefix + name", l)
		}
	}
}

func mustParse(t *testing.T, c store.Container) Service {
	t.Helper()
	svc, probs := ParseService(c, Options{Network: "proxy"})
	if hasError(probs) {
		t.Fatal(probs)
	}
	return svc
}
