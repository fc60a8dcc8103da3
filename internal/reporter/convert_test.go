package reporter

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

func port(s string) network.Port { return network.MustParsePort(s) }

func TestConvert(t *testing.T) {
	ip := netip.MustParseAddr
	full := container.InspectResponse{
		ID:   "abc123",
		Name: "/web-1",
		State: &container.State{
			Status: container.StateRunning,
			Health: &container.Health{Status: container.Healthy},
		},
		Config: &container.Config{
			Image:  "nginx:1.27",
			Labels: map[string]string{"portico.vhost": "a.test", "other": "x"},
			Env: []string{
				"VIRTUAL_HOST=a.test", "SECRET=hunter2", "PATH=/bin", "VIRTUAL_PORT=80",
				"LETSENCRYPT_HOST=a.test", "VIRTUAL_PORT=8080", "NOEQUALS", "AWS_SECRET_ACCESS_KEY=k",
			},
			ExposedPorts: network.PortSet{port("80/tcp"): {}, port("53/udp"): {}, port("443/tcp"): {}},
		},
		NetworkSettings: &container.NetworkSettings{
			Ports: network.PortMap{
				port("443/tcp"): {{HostIP: ip("0.0.0.0"), HostPort: "8443"}, {HostIP: ip("::"), HostPort: "8443"}},
				port("80/tcp"):  nil,
			},
			Networks: map[string]*network.EndpointSettings{
				"front":  {IPAddress: ip("172.18.0.2"), GlobalIPv6Address: ip("fd00::2")},
				"bridge": {IPAddress: ip("172.17.0.3")},
				"gone":   nil,
			},
		},
	}
	tests := []struct {
		name string
		in   container.InspectResponse
		want store.Container
		err  string
	}{
		{
			name: "full",
			in:   full,
			want: store.Container{
				ID: "abc123", Name: "web-1", Host: "h1", Image: "nginx:1.27",
				Labels: map[string]string{"portico.vhost": "a.test"},
				Env:    map[string]string{"VIRTUAL_HOST": "a.test", "VIRTUAL_PORT": "8080", "LETSENCRYPT_HOST": "a.test"},
				Networks: map[string]store.Network{
					"front":  {IPv4: "172.18.0.2", IPv6: "fd00::2"},
					"bridge": {IPv4: "172.17.0.3"},
				},
				Ports: []store.Port{
					{Port: 53, Proto: "udp"},
					{Port: 80, Proto: "tcp"},
					{Port: 443, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8443},
					{Port: 443, Proto: "tcp", HostIP: "::", HostPort: 8443},
				},
				State: "running", Health: "healthy",
			},
		},
		{
			name: "stopped, no health check, no networks",
			in: container.InspectResponse{
				ID: "def", Name: "/db",
				State:           &container.State{Status: container.StateExited, Health: &container.Health{Status: container.NoHealthcheck}},
				Config:          &container.Config{Image: "postgres", Env: []string{"POSTGRES_PASSWORD=x"}},
				NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{"bridge": {}}},
			},
			want: store.Container{ID: "def", Name: "db", Host: "h1", Image: "postgres", State: "exited",
				Networks: map[string]store.Network{"bridge": {}}},
		},
		{
			name: "paused and unhealthy",
			in: container.InspectResponse{ID: "p", Name: "/p",
				State: &container.State{Status: container.StatePaused, Health: &container.Health{Status: container.Unhealthy}}},
			want: store.Container{ID: "p", Name: "p", Host: "h1", State: "paused", Health: "unhealthy"},
		},
		{
			name: "bare inspect result",
			in:   container.InspectResponse{ID: "x"},
			want: store.Container{ID: "x", Host: "h1"},
		},
		{
			name: "no id",
			in:   container.InspectResponse{Name: "/anon"},
			err:  `container "/anon": inspect result has no id`,
		},
		{
			name: "bad host port",
			in: container.InspectResponse{ID: "bad", Name: "/bad", NetworkSettings: &container.NetworkSettings{
				Ports: network.PortMap{port("80/tcp"): {{HostPort: "eighty"}}}}},
			err: `container bad (bad): port 80/tcp: host port "eighty" is not a port number`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Convert("h1", tt.in, nil)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestConvertNeverLeaksEnv checks the encoded record, not the struct: no
// value outside the allow-list may appear anywhere in it.
func TestConvertNeverLeaksEnv(t *testing.T) {
	in := container.InspectResponse{ID: "s", Name: "/s", Config: &container.Config{
		Env: []string{"DB_PASSWORD=topsecret-1", "VIRTUAL_HOST=ok.test", "X=topsecret-2"},
	}}
	c, err := Convert("h", in, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "topsecret") || !strings.Contains(string(b), "ok.test") {
		t.Errorf("record = %s", b)
	}
}

func TestConvertDeterministic(t *testing.T) {
	in := container.InspectResponse{ID: "d", Config: &container.Config{
		ExposedPorts: network.PortSet{port("1/tcp"): {}, port("2/tcp"): {}, port("3/udp"): {}, port("4/tcp"): {}, port("5/tcp"): {}},
	}}
	first, _ := Convert("h", in, nil)
	a, _ := store.Encode(first)
	for range 20 {
		c, _ := Convert("h", in, nil)
		b, _ := store.Encode(c)
		if string(a) != string(b) {
			t.Fatalf("encodings differ:\n%s\n%s", a, b)
		}
	}
}

func TestEventContainer(t *testing.T) {
	tests := []struct {
		m    events.Message
		want string
	}{
		{events.Message{Type: "container", Action: "start", Actor: events.Actor{ID: "c1"}}, "c1"},
		{events.Message{Type: "container", Action: "die", Actor: events.Actor{ID: "c1"}}, "c1"},
		{events.Message{Type: "container", Action: "kill", Actor: events.Actor{ID: "c1", Attributes: map[string]string{"signal": "15"}}}, "c1"},
		{events.Message{Type: "container", Action: "destroy", Actor: events.Actor{ID: "c1"}}, "c1"},
		{events.Message{Type: "container", Action: "rename", Actor: events.Actor{ID: "c1"}}, "c1"},
		{events.Message{Type: "container", Action: "health_status: unhealthy", Actor: events.Actor{ID: "c1"}}, "c1"},
		{events.Message{Type: "container", Action: "exec_start: sh", Actor: events.Actor{ID: "c1"}}, ""},
		{events.Message{Type: "container", Action: "attach", Actor: events.Actor{ID: "c1"}}, ""},
		{events.Message{Type: "network", Action: "connect", Actor: events.Actor{ID: "n1", Attributes: map[string]string{"container": "c2"}}}, "c2"},
		{events.Message{Type: "network", Action: "disconnect", Actor: events.Actor{ID: "n1", Attributes: map[string]string{"container": "c2"}}}, "c2"},
		{events.Message{Type: "network", Action: "create", Actor: events.Actor{ID: "n1"}}, ""},
		{events.Message{Type: "image", Action: "pull", Actor: events.Actor{ID: "i"}}, ""},
	}
	for _, tt := range tests {
		if got := EventContainer(tt.m); got != tt.want {
			t.Errorf("EventContainer(%s %s) = %q, want %q", tt.m.Type, tt.m.Action, got, tt.want)
		}
	}
}

func TestMatchLabels(t *testing.T) {
	l := map[string]string{"a": "1", "b": ""}
	for _, tt := range []struct {
		f    []string
		want bool
	}{
		{nil, true},
		{[]string{"a"}, true},
		{[]string{"a=1"}, true},
		{[]string{"a=2"}, false},
		{[]string{"b="}, true},
		{[]string{"a", "c"}, false},
	} {
		if got := MatchLabels(l, tt.f); got != tt.want {
			t.Errorf("MatchLabels(%v) = %v, want %v", tt.f, got, tt.want)
		}
	}
}

// TestConvertCopiesOnlyReadLabels: portico.*, com.chameth.* and the label
// filter's keys are copied; nothing else, however large.
func TestConvertCopiesOnlyReadLabels(t *testing.T) {
	in := container.InspectResponse{ID: "l", Name: "/l", Config: &container.Config{Labels: map[string]string{
		"portico.vhost":                   "a.test",
		"portico.unknown":                 "kept for did-you-mean",
		"com.chameth.proxy":               "80",
		"tenant":                          "blue",
		"team":                            "red",
		"huge":                            strings.Repeat("x", 1700<<10),
		"org.opencontainers.image.source": "https://example.com/secret-repo",
		"porticox":                        "not ours",
		"com.chamethx":                    "not ours",
	}}}
	c, err := Convert("h", in, []string{"tenant=blue", "team"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"portico.vhost": "a.test", "portico.unknown": "kept for did-you-mean", "com.chameth.proxy": "80", "tenant": "blue", "team": "red"}
	if !reflect.DeepEqual(c.Labels, want) {
		t.Errorf("labels %v, want %v", c.Labels, want)
	}
	if c, _ := Convert("h", container.InspectResponse{ID: "n", Config: &container.Config{Labels: map[string]string{"a": "b"}}}, nil); c.Labels != nil {
		t.Errorf("unrelated labels only: labels %v, want none", c.Labels)
	}
}

func TestRecordCap(t *testing.T) {
	small := store.Container{ID: "s", Name: "small", Host: "h", State: "running", Labels: map[string]string{"portico.vhost": "a.test"}}
	got, b, err := Record(small, MaxRecordBytes)
	if err != nil || !reflect.DeepEqual(got, small) || len(b) > MaxRecordBytes {
		t.Fatalf("small record: %+v %d bytes %v", got, len(b), err)
	}
	big := small
	big.Labels = map[string]string{"portico.vhost": strings.Repeat("a.test ", 10000)}
	big.Image = "img"
	got, b, err = Record(big, MaxRecordBytes)
	if err != nil {
		t.Fatal(err)
	}
	if got.Rejected == "" || got.Labels != nil || got.Image != "" || got.ID != "s" || got.Name != "small" || got.State != "running" || got.Host != "h" {
		t.Errorf("oversized record published as %+v", got)
	}
	if !strings.Contains(got.Rejected, "exceeds the reporter's cap of 65536 bytes") || len(b) > 1024 {
		t.Errorf("rejected record (%d bytes): %s", len(b), b)
	}
	back, err := store.DecodeContainer("/p/containers/h/s", b)
	if err != nil || back.Rejected != got.Rejected {
		t.Errorf("rejected record does not round-trip: %+v %v", back, err)
	}
	// Even a hostile name keeps the rejected record small.
	big.Name = strings.Repeat("n", 100000)
	if got, b, _ := Record(big, MaxRecordBytes); len(b) > 2048 || got.Rejected == "" {
		t.Errorf("rejected record with a huge name: %d bytes", len(b))
	}
}

// TestConvertNginxProxyEnv: HTTPS_METHOD and HSTS are copied whole; the
// nginx-proxy/acme-companion variables Portico only warns about are copied
// cut to routing.IgnoredEnvValueBytes, and the credential ones as a marker,
// so that every one of them set at its largest still fits a record.
func TestConvertNginxProxyEnv(t *testing.T) {
	big := strings.Repeat("v", 100<<10)
	env := []string{"HTTPS_METHOD=noredirect", "HSTS=max-age=600; preload", "ZEROSSL_API_KEY=topsecret-3"}
	for _, k := range routing.IgnoredEnv {
		env = append(env, k+"="+big)
	}
	in := container.InspectResponse{ID: "n", Name: "/n", Config: &container.Config{Env: env}}
	c, err := Convert("h", in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Env["HTTPS_METHOD"] != "noredirect" || c.Env["HSTS"] != "max-age=600; preload" || c.Env["ZEROSSL_API_KEY"] != routing.SecretEnvMarker {
		t.Errorf("env = %v", c.Env)
	}
	for _, k := range routing.IgnoredEnv {
		if v, ok := c.Env[k]; !ok || len(v) > routing.IgnoredEnvValueBytes+len("…") {
			t.Errorf("%s: %d bytes copied (present %t)", k, len(v), ok)
		}
	}
	b, err := store.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "topsecret") || len(b) > 16<<10 {
		t.Errorf("record is %d bytes or leaks the secret: %.300s", len(b), b)
	}
}
