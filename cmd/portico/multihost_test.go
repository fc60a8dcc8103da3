package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
)

// TestMultiHostFlags: --advertise-addr is checked at start (an IP address
// other hosts can reach, or nothing), read from its variable too;
// --host-expiry of 0 or less means never.
func TestMultiHostFlags(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		env     map[string]string
		want    string
		wantErr string
	}{
		{want: "invalid IP"}, // none: the zero address
		{args: []string{"--advertise-addr", "10.0.0.2"}, want: "10.0.0.2"},
		{env: map[string]string{"PORTICO_ADVERTISE_ADDR": "2001:db8::2"}, want: "2001:db8::2"},
		{args: []string{"--advertise-addr", "docker-1.example.com"}, wantErr: `--advertise-addr "docker-1.example.com"`},
		{args: []string{"--advertise-addr", "0.0.0.0"}, wantErr: "unspecified"},
		{args: []string{"--advertise-addr", "fe80::1%eth0"}, wantErr: "zone"},
	} {
		c := newCommand("reporter", "test", &bytes.Buffer{})
		ro := addReporter(c.fs, env{})
		if err := c.parse(tt.args, envOf(tt.env)); err != nil {
			t.Fatal(err)
		}
		a, err := ro.advertiseAddr()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v: err %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || a.String() != tt.want {
			t.Errorf("%v %v: %v %v, want %s", tt.args, tt.env, a, err, tt.want)
		}
	}
	for in, want := range map[time.Duration]time.Duration{0: -1, -time.Hour: -1, time.Hour: time.Hour} {
		if got := hostExpiry(in); got != want {
			t.Errorf("hostExpiry(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestStatusNodeView: `portico status --node a` shows the routes as a proxy
// on node a sees them: a container of node b at b's advertised address and
// its published port, and one whose port is not published as an error
// naming it, its port and its node. Without --node every container is
// reached at its container address, as on one host, and neither shows.
func TestStatusNodeView(t *testing.T) {
	e := storetest.Start(t)
	keys := store.NewKeys("/portico")
	ctx := context.Background()
	for _, c := range []store.Container{
		{ID: "pub", Name: "pub", Host: "b", HostAddr: "10.0.0.2", State: "running",
			Labels:   map[string]string{routing.LabelVhost: "pub.test"},
			Networks: map[string]store.Network{"bridge": {IPv4: "172.17.0.2"}},
			Ports:    []store.Port{{Port: 80, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8080}}},
		{ID: "hidden", Name: "hidden", Host: "b", HostAddr: "10.0.0.2", State: "running",
			Labels:   map[string]string{routing.LabelVhost: "hidden.test"},
			Networks: map[string]store.Network{"bridge": {IPv4: "172.17.0.3"}},
			Ports:    []store.Port{{Port: 80, Proto: "tcp"}}},
	} {
		if _, err := store.PutJSON(ctx, e.Client, keys.Container(c.Host, c.ID), c); err != nil {
			t.Fatal(err)
		}
	}
	status := func(args ...string) (rep struct {
		Containers []struct {
			Name string `json:"name"`
			Addr string `json:"addr"`
		} `json:"containers"`
		Problems []routing.Problem `json:"problems"`
	}, code int) {
		t.Helper()
		var out, errOut bytes.Buffer
		err := cmdStatus(ctx, append([]string{"--etcd-endpoints", e.Endpoint, "--json"}, args...), envOf(nil), &out, &errOut)
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("status %v: %v\n%s%s", args, err, out.String(), errOut.String())
		}
		return rep, exitCode(err)
	}
	rep, code := status("--node", "a")
	if code != exitProblems {
		t.Errorf("status --node a: exit code %d, want %d (an error)", code, exitProblems)
	}
	got := map[string]string{}
	for _, c := range rep.Containers {
		got[c.Name] = c.Addr
	}
	if got["pub"] != "10.0.0.2:8080" {
		t.Errorf("status --node a: pub reached at %q, want 10.0.0.2:8080", got["pub"])
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Container != "hidden" ||
		!strings.Contains(rep.Problems[0].Message, `container port 80/tcp is not published on node "b"`) {
		t.Errorf("status --node a: problems %+v, want one naming hidden, its port and node b", rep.Problems)
	}

	rep, code = status()
	if code != 0 || len(rep.Problems) != 0 {
		t.Errorf("status without --node: exit code %d, problems %+v; want 0 and none", code, rep.Problems)
	}
	for _, c := range rep.Containers {
		if strings.HasPrefix(c.Addr, "10.0.0.2") {
			t.Errorf("status without --node: %s reached at %s, want its container address", c.Name, c.Addr)
		}
	}
}
