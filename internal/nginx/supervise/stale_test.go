package supervise

import "testing"

func TestIsOurMaster(t *testing.T) {
	tests := []struct {
		cmdline string
		want    bool
	}{
		{"nginx: master process nginx -p /var/lib/portico/nginx -c /var/lib/portico/nginx/nginx.conf -g daemon off;", true},
		{"nginx: master process nginx -p /var/lib/portico/nginx/ -c x", true},
		{"nginx: master process nginx -p /other -c x", false},
		{"nginx: worker process", false},
		{"nginx: master process /usr/sbin/nginx -g daemon on; master_process on;", false},
		{"bash\x00-c\x00nginx: master -p /var/lib/portico/nginx", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := isOurMaster([]byte(tt.cmdline), "/var/lib/portico/nginx"); got != tt.want {
			t.Errorf("isOurMaster(%q) = %v, want %v", tt.cmdline, got, tt.want)
		}
	}
}
