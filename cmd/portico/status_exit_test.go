package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
)

// TestStatusExitCodes: 0 for a report without errors (warnings allowed), 3
// for one with errors (printed in full all the same), 2 for bad usage, 1
// when the command cannot run.
func TestStatusExitCodes(t *testing.T) {
	e := storetest.Start(t)
	keys := store.NewKeys("/portico")
	ctx := context.Background()
	put := func(c store.Container) {
		t.Helper()
		if _, err := store.PutJSON(ctx, e.Client, keys.Container(c.Host, c.ID), c); err != nil {
			t.Fatal(err)
		}
	}
	status := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, append([]string{"status", "--etcd-endpoints", e.Endpoint}, args...), envOf(nil), &out, &errOut)
		return out.String(), err
	}
	put(store.Container{ID: "good", Name: "good", Host: "h1", State: "running",
		Labels: map[string]string{routing.LabelVhost: "good.test"}, Networks: map[string]store.Network{"n": {IPv4: "172.30.0.2"}}})
	if out, err := status(); exitCode(err) != exitOK || !strings.Contains(out, "good.test") {
		t.Fatalf("clean store: exit %d (%v), output:\n%s", exitCode(err), err, out)
	}

	put(store.Container{ID: "bad", Name: "bad", Host: "h1", State: "running",
		Labels: map[string]string{routing.LabelVhost: "bad.test", routing.LabelPort: "eighty"}})
	for _, mode := range [][]string{nil, {"--json"}} {
		out, err := status(mode...)
		if exitCode(err) != exitProblems {
			t.Errorf("status %v with a rejected container: exit %d (%v), want %d", mode, exitCode(err), err, exitProblems)
		}
		if !strings.Contains(out, `label portico.port="eighty"`) && !strings.Contains(out, `"value": "eighty"`) {
			t.Errorf("status %v does not print the problem:\n%s", mode, out)
		}
		if mode != nil {
			var rep map[string]any
			if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
				t.Errorf("status --json with errors is not JSON: %v\n%s", jerr, out)
			}
		}
	}

	if _, err := status("--no-such-flag"); exitCode(err) != exitUsage {
		t.Errorf("bad flag: exit %d (%v), want %d", exitCode(err), err, exitUsage)
	}
	var sink bytes.Buffer
	if err := run(ctx, []string{"no-such-command"}, envOf(nil), &sink, &sink); exitCode(err) != exitUsage {
		t.Errorf("unknown command: exit %d (%v), want %d", exitCode(err), err, exitUsage)
	}
	if err := run(ctx, nil, envOf(nil), &sink, &sink); exitCode(err) != exitUsage {
		t.Errorf("no command: exit %d (%v), want %d", exitCode(err), err, exitUsage)
	}
	if err := run(ctx, []string{"status", "--help"}, envOf(nil), &sink, &sink); exitCode(err) != exitOK {
		t.Errorf("--help: exit %d (%v), want 0", exitCode(err), err)
	}
}

// TestStatusSaysFastThatEtcdIsDown: with no etcd behind the endpoint,
// status fails within its probe (1.5 s), not the 10 s read deadline, with
// exit code 1 and an error naming the endpoint.
func TestStatusSaysFastThatEtcdIsDown(t *testing.T) {
	// A loopback port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()

	// The data dir of a `portico run` that was killed: its socket file is
	// left behind, nobody serves on it.
	stale := t.TempDir()
	if _, err := store.PrepareDataDir(stale); err != nil {
		t.Fatal(err)
	}
	ul, err := net.Listen("unix", store.SocketPath(stale))
	if err != nil {
		t.Fatal(err)
	}
	ul.(*net.UnixListener).SetUnlinkOnClose(false)
	ul.Close()
	if _, err := os.Stat(store.SocketPath(stale)); err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	staleEP, err := store.EmbeddedEndpoint(stale)
	if err != nil {
		t.Fatal(err)
	}

	empty := filepath.Join(t.TempDir(), "never-ran")
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"dead endpoint", []string{"--etcd-endpoints", dead}, []string{"etcd at " + dead + " did not answer within", "running there?"}},
		{"data dir of a killed portico run", []string{"--data-dir", stale}, []string{"etcd at " + staleEP + " did not answer within"}},
		{"data dir where portico never ran", []string{"--data-dir", empty}, []string{"no running portico in " + empty}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			start := time.Now()
			err := run(context.Background(), append([]string{"status"}, tt.args...), envOf(nil), &out, &errOut)
			took := time.Since(start)
			t.Logf("%s: failed after %s: %v", tt.name, took.Round(time.Millisecond), err)
			if exitCode(err) != exitFailed {
				t.Fatalf("exit %d (%v), want %d", exitCode(err), err, exitFailed)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			// Generous: the probe is 1.5 s; the old behaviour took the 10 s
			// read deadline.
			if took > 5*time.Second {
				t.Errorf("took %s to say etcd is down", took)
			}
		})
	}
}
