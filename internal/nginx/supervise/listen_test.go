package supervise

import "testing"

func TestAddrInUse(t *testing.T) {
	for line, want := range map[string]string{
		"2026/11/30 07:00:00 [emerg] 12#12: bind() to 127.0.0.1:8080 failed (98: Address already in use)": "127.0.0.1:8080",
		"nginx: [emerg] bind() to [::]:443 failed (98: Address already in use)":                           "[::]:443",
		"nginx: [emerg] bind() to 0.0.0.0:80 failed (13: Permission denied)":                              "",
		"nginx: [emerg] still could not bind()":                                                           "",
	} {
		if got, _ := addrInUse(line); got != want {
			t.Errorf("%q: %q, want %q", line, got, want)
		}
	}
}
