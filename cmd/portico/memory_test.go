package main

import (
	"testing"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"1048576": 1 << 20, "96MiB": 96 << 20, "200MB": 200e6, "1 GiB": 1 << 30, "512KiB": 512 << 10, "10B": 10,
	} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1MiB", "0", "12XB", "1.5GiB", "99999999999GiB"} {
		if got, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) = %d, want an error", in, got)
		}
	}
}

func TestTrimDue(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		name              string
		quiet             bool
		live, held, floor uint64
		want              bool
	}{
		{"quiet after a burst", true, 20 * mb, 120 * mb, 0, true},
		{"burst still under way", false, 20 * mb, 120 * mb, 0, false},
		{"normal headroom", true, 20 * mb, 30 * mb, 0, false},
		{"large heap, normal headroom", true, 100 * mb, 130 * mb, 0, false},
		{"what the last trim could not give back", true, 20 * mb, 40 * mb, 38 * mb, false},
		{"more since the last trim", true, 20 * mb, 60 * mb, 38 * mb, true},
	} {
		if got := trimDue(tc.quiet, tc.live, tc.held, tc.floor); got != tc.want {
			t.Errorf("%s: trimDue = %v, want %v", tc.name, got, tc.want)
		}
	}
}
