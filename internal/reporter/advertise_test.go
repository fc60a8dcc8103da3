package reporter_test

import (
	"net/netip"
	"testing"

	"github.com/portico/portico/internal/reporter"
)

func TestCheckAdvertiseAddr(t *testing.T) {
	for _, tt := range []struct {
		addr string
		ok   bool
	}{
		{"", true}, // none
		{"10.0.0.2", true},
		{"192.0.2.7", true},
		{"2001:db8::2", true},
		{"127.0.0.1", true}, // a single machine's test hosts
		{"0.0.0.0", false},
		{"::", false},
		{"224.0.0.1", false},
		{"ff02::1", false},
		{"169.254.1.1", false},
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"255.255.255.255", false},
	} {
		var a netip.Addr
		if tt.addr != "" {
			a = netip.MustParseAddr(tt.addr)
		}
		if err := reporter.CheckAdvertiseAddr(a); (err == nil) != tt.ok {
			t.Errorf("%q: err %v, want ok=%v", tt.addr, err, tt.ok)
		}
	}
}
