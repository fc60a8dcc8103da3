package acme

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-acme/lego/v5/challenge"
)

func TestChooseChallenge(t *testing.T) {
	for _, tc := range []struct {
		name      string
		zones     []string
		overrides map[string]string
		http01    bool
		want      string
		wantErr   string
	}{
		{name: "www.example.com", http01: true, want: ChallengeHTTP01},
		{name: "www.example.com", zones: []string{"example.com"}, http01: true, want: ChallengeDNS01},
		{name: "www.example.com", zones: []string{""}, http01: true, want: ChallengeDNS01},
		{name: "www.example.org", zones: []string{"example.com"}, http01: true, want: ChallengeHTTP01},
		{name: "notexample.com", zones: []string{"example.com"}, http01: true, want: ChallengeHTTP01},
		{name: "*.example.com", zones: []string{"example.com"}, http01: true, want: ChallengeDNS01},
		{name: "*.example.org", zones: []string{"example.com"}, http01: true, wantErr: "a wildcard can only be validated by dns-01: configure a DNS provider"},
		{name: "*.example.org", http01: true, wantErr: "wildcard"},
		// Overrides: the longest zone wins, auto falls back to the rule.
		{name: "a.example.com", zones: []string{""}, overrides: map[string]string{"": "http-01"}, http01: true, want: ChallengeHTTP01},
		{name: "a.example.com", zones: []string{""}, overrides: map[string]string{"": "http-01", "example.com": "auto"}, http01: true, want: ChallengeDNS01},
		{name: "a.b.example.com", zones: []string{""}, overrides: map[string]string{"example.com": "http-01", "b.example.com": "dns-01"}, http01: true, want: ChallengeDNS01},
		{name: "a.example.com", overrides: map[string]string{"example.com": "dns-01"}, http01: true, wantErr: "dns-01 needs a DNS provider"},
		{name: "*.example.com", zones: []string{"example.com"}, overrides: map[string]string{"": "http-01"}, http01: true, wantErr: "asks for http-01"},
		{name: "a.example.com", http01: false, wantErr: "http-01 is off"},
	} {
		got, err := ChooseChallenge(tc.name, tc.zones, tc.overrides, tc.http01)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrUnsolvable) || !strings.Contains(err.Error(), tc.name) {
				t.Errorf("%s %v %v: err %v, want one naming the name with %q", tc.name, tc.zones, tc.overrides, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s %v %v: %q %v, want %q", tc.name, tc.zones, tc.overrides, got, err, tc.want)
		}
	}
}

func TestParseChallenges(t *testing.T) {
	got, err := ParseChallenges([]string{"http-01", "Example.COM.=dns-01", "b.example.com=auto"})
	if err != nil || got[""] != "http-01" || got["example.com"] != "dns-01" || got["b.example.com"] != "auto" || len(got) != 3 {
		t.Fatalf("got %v %v", got, err)
	}
	for _, bad := range [][]string{{"tls-alpn-01"}, {"x=y"}, {"*.example.com=dns-01"}, {"http-01", "dns-01"}, {"a=http-01", "A.=dns-01"}} {
		if _, err := ParseChallenges(bad); err == nil || !strings.Contains(err.Error(), "--acme-challenge") {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}

func TestSolversPerCertificate(t *testing.T) {
	i, err := New(Config{HTTP01: &fakeProvider{}, Providers: map[string]challenge.Provider{"dns.example": &fakeProvider{}}}, nopKV{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		names []string
		want  solverSet
	}{
		{[]string{"a.web.example"}, solverSet{http: true}},
		{[]string{"*.dns.example", "dns.example"}, solverSet{dns: true}},
		{[]string{"a.web.example", "a.dns.example"}, solverSet{dns: true, http: true}},
	} {
		got, err := i.solvers(tc.names)
		if err != nil || got != tc.want {
			t.Errorf("%v: %+v %v, want %+v", tc.names, got, err, tc.want)
		}
	}
	if err := i.Preflight([]string{"a.web.example", "*.web.example"}); !errors.Is(err, ErrUnsolvable) || !strings.Contains(err.Error(), "*.web.example") {
		t.Errorf("wildcard without provider: %v", err)
	}
	if _, err := New(Config{}, nopKV{}, nil); err == nil {
		t.Error("no challenge at all: want error")
	}
}
