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
		"client_header_timeout": "5000ms", "client_body_timeout": "10000ms", "send_timeout": "10000ms",
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

// TestMainConfWorkerUser: the workers' account is rendered as one "user"
// directive, only when given, and a name that could end the directive or
// add another is refused.
func TestMainConfWorkerUser(t *testing.T) {
	for _, tt := range []struct {
		user, group string
		want        string // the directive's value; "" means none
		err         string
	}{
		{user: "", want: ""},
		{user: "portico-nginx", group: "portico-nginx", want: "portico-nginx portico-nginx"},
		{user: "edge", group: "proxies", want: "edge proxies"},
		{user: "edge", want: "edge edge"},
		{user: "nobody", group: "nogroup", want: "nobody nogroup"},
		{user: "a;daemon on", err: `nginx worker user "a;daemon on": character ';'`},
		{user: "a b", err: "character ' '"},
		{user: "edge", group: "g}", err: `nginx worker group "g}"`},
		{user: "-x", err: "not an account name"},
		{user: strings.Repeat("a", 33), err: "not an account name"},
		{group: "proxies", err: "without a user"},
	} {
		b, err := MainConf{Prefix: "/p", Include: "/p/portico.conf", User: tt.user, Group: tt.group}.Render()
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("user %q group %q: err %v, want %q", tt.user, tt.group, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("user %q group %q: %v", tt.user, tt.group, err)
		}
		m := regexp.MustCompile(`(?m)^\s*user\s+([^;]*);`).FindAllStringSubmatch(string(b), -1)
		switch {
		case tt.want == "" && len(m) != 0:
			t.Errorf("no user given, rendered %q", m)
		case tt.want != "" && (len(m) != 1 || m[0][1] != tt.want):
			t.Errorf("user %q group %q: rendered %q, want one \"user %s;\"", tt.user, tt.group, m, tt.want)
		}
	}
}
