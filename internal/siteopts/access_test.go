package siteopts

import (
	"testing"
	"time"
)

func TestParsers(t *testing.T) {
	sizes := map[string]int64{"0": 0, "1": 1, "10k": 10 << 10, "10K": 10 << 10, "10m": 10 << 20, "2g": 2 << 30, "16g": 16 << 30}
	for in, want := range sizes {
		if s, err := ParseSize(in); err != nil || !s.Set || s.Bytes != want {
			t.Errorf("ParseSize(%q) = %+v, %v; want %d", in, s, err, want)
		}
	}
	for _, bad := range []string{"", "m", "10mb", "1.5m", "-1", " 1m", "17g", "99999999999g", "1t"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
	times := map[string]time.Duration{"90": 90 * time.Second, "90s": 90 * time.Second, "500ms": 500 * time.Millisecond,
		"1m30s": 90 * time.Second, "2h": 2 * time.Hour, "24h": 24 * time.Hour}
	for in, want := range times {
		if d, err := ParseTime(in); err != nil || d != want {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, d, err, want)
		}
	}
	for _, bad := range []string{"", "0", "0s", "s", "1d", "25h", "1.5s", "1 s", "10us", "999999999999h"} {
		if _, err := ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"255.255.255.255", "255.255.255.255/32", "10.0.0.1/8", "", ",", "::ffff:10.0.0.1"} {
		if _, err := ParseAllow(bad); err == nil {
			t.Errorf("ParseAllow(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", "r/s", "10r/", "10r/h", "0r/s", "100001r/s", "-1r/s", "10 r/s", "10r/s "} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
}

func TestFieldsAndDiff(t *testing.T) {
	a := Options{Access: Access{MaxBody: Size{Set: true}, Rate: Rate{N: 2, Per: time.Second}, Burst: -1}}
	fs := a.Fields()
	if len(fs) != 2 || fs[0] != (Field{"max-body", "0"}) || fs[1] != (Field{"rate", "120/2"}) {
		t.Errorf("fields %v", fs)
	}
	if l, _, _ := a.Diff(a); l != "" {
		t.Errorf("same options differ on %s", l)
	}
	b := a
	b.Burst = 3
	if l, m, o := b.Diff(a); l != "portico.rate" || m != "120/3" || o != "120/2" {
		t.Errorf("diff %s %s %s", l, m, o)
	}
	if fs := (Options{}).Fields(); len(fs) != 0 {
		t.Errorf("zero options have fields %v", fs)
	}
}
