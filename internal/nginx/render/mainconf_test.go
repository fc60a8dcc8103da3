package render

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func directive(t *testing.T, conf, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*` + name + ` ([^;]+);`).FindStringSubmatch(conf)
	if m == nil {
		t.Fatalf("no %s in\n%s", name, conf)
	}
	return m[1]
}

// Each worker may open two descriptors per connection, and slow clients
// are bounded by the documented timeouts.
func TestMainConfLimits(t *testing.T) {
	b, err := MainConf{Prefix: "/p", Include: "/p/portico.conf"}.Render()
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	conns, _ := strconv.Atoi(directive(t, conf, "worker_connections"))
	rlimit, _ := strconv.Atoi(directive(t, conf, "worker_rlimit_nofile"))
	if conns < 1024 || rlimit < 2*conns {
		t.Errorf("worker_connections %d, worker_rlimit_nofile %d: want rlimit >= 2x connections", conns, rlimit)
	}
	for name, want := range map[string]string{
		"client_header_timeout": "10000ms", "client_body_timeout": "10000ms", "send_timeout": "10000ms",
		"keepalive_timeout": "30000ms", "keepalive_requests": "1000", "reset_timedout_connection": "on",
	} {
		if got := directive(t, conf, name); got != want {
			t.Errorf("%s %s, want %s", name, got, want)
		}
	}
	b, err = MainConf{Prefix: "/p", Include: "/p/portico.conf", Client: ClientLimits{HeaderTimeout: 1500 * time.Millisecond}}.Render()
	if err != nil {
		t.Fatal(err)
	}
	if got := directive(t, string(b), "client_header_timeout"); got != "1500ms" {
		t.Errorf("client_header_timeout %s, want 1500ms", got)
	}
	if got := directive(t, string(b), "client_body_timeout"); got != "10000ms" {
		t.Errorf("client_body_timeout %s, want the default", got)
	}
}

func TestMainConfRejectsBadLimits(t *testing.T) {
	for name, c := range map[string]ClientLimits{
		"client header timeout": {HeaderTimeout: -time.Second},
		"send timeout":          {SendTimeout: time.Microsecond},
		"keepalive requests":    {KeepaliveRequests: -1},
	} {
		_, err := MainConf{Prefix: "/p", Include: "/p/portico.conf", Client: c}.Render()
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
