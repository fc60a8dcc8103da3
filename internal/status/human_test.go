package status

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/certs"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

func TestAgo(t *testing.T) {
	const day = 24 * time.Hour
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{40 * time.Second, "40s"},
		{12*time.Minute + 59*time.Second, "12m"},
		{5*time.Hour + 59*time.Minute, "5h"},
		{day, "1d"},
		{day + 5*time.Hour + 30*time.Minute, "1d 5h"},
		{2*day - time.Minute, "1d 23h"},
		{2 * day, "2d"},
		{61*day + 23*time.Hour, "61d"},
		{-3 * time.Hour, "-3h"},
	} {
		if got := Ago(tt.d); got != tt.want {
			t.Errorf("Ago(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestTextShowsDaysListenAddressesAndLastApply(t *testing.T) {
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	r := Report{
		Certs: []certs.CertStatus{{Primary: "d.test", Names: []string{"d.test"}, Issuer: "local", Condition: "valid",
			NotAfter: now.Add(61*24*time.Hour + time.Hour), NextRenewal: now.Add(5*time.Hour + 10*time.Minute)}},
		Nginx: []store.NginxStatus{{Instance: "n1", Routes: 2, Reloads: 4, Applied: "0123456789abcdef",
			AppliedAt: now.Add(-3 * time.Minute), HTTPAddrs: []string{"127.0.0.1:8080"}, HTTPSAddrs: []string{":443", "[::1]:8443"}}},
	}
	var out bytes.Buffer
	if err := r.WriteText(&out, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"2027-01-30 09:00 (in 61d)", "2026-11-30 13:10 (in 5h)",
		"applied 2026-11-30 07:57 (3m ago)",
		"listens: http 127.0.0.1:8080; https :443,[::1]:8443",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, out.String())
		}
	}
	// JSON keeps timestamps, not the person's durations.
	out.Reset()
	if err := r.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"not_after": "2027-01-30T09:00:00Z"`, `"applied_at": "2026-11-30T07:57:00Z"`, `"http_addrs": [`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("JSON lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "61d") {
		t.Errorf("JSON holds a person's duration:\n%s", out.String())
	}
}

func TestErrorsCountsWhatFailsStatus(t *testing.T) {
	warn := routing.Problem{Severity: routing.SeverityWarning, Container: "w"}
	bad := routing.Problem{Severity: routing.SeverityError, Container: "b"}
	for _, tt := range []struct {
		name string
		r    Report
		want int
	}{
		{"empty", Report{}, 0},
		{"warnings only", Report{Problems: []routing.Problem{warn, warn}}, 0},
		{"a rejected container", Report{Problems: []routing.Problem{warn, bad}}, 1},
		{"an unreadable record", Report{Store: []string{`key "x": bad json`}}, 1},
		{"nginx refused a config", Report{Nginx: []store.NginxStatus{{Instance: "n1"}, {Instance: "n2", Error: "nginx -t: boom"}}}, 1},
		{"a failed order", Report{Certs: []certs.CertStatus{{Primary: "a.test", Error: "acme: rate limited"}, {Primary: "b.test"}}}, 1},
		{"all of them", Report{Problems: []routing.Problem{bad}, Store: []string{"x"},
			Nginx: []store.NginxStatus{{Error: "e"}}, Certs: []certs.CertStatus{{Error: "e"}}}, 4},
	} {
		if got := tt.r.Errors(); got != tt.want {
			t.Errorf("%s: Errors() = %d, want %d", tt.name, got, tt.want)
		}
	}
}
