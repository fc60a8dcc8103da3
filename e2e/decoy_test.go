package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// TestDecoyIgnored is the guard of the shared Docker daemon. The decoy
// container (dockertest.WithDecoy: every Portico label and variable,
// portico.default=true, not the run label) runs for the whole package.
// A portico started as the tests start theirs (startRun) serves its own
// container and answers the decoy's vhost and unknown hosts with 404, and
// its store holds no record of the decoy. A control portico whose label
// filter selects the decoy serves it, as the default server too, so the
// first one ignores it because of its filter. porticotest.Start checks every
// other portico of the package the same way when its test ends.
func TestDecoyIgnored(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	decoy := d.RequireDecoy(t)
	net := d.Network(t, "decoy")

	p := startRun(t, d, net)
	host := "own-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "own", Network: net, Labels: vhostLabels(host)})
	eventually(t, 30*time.Second, "the test's own container served", func() error { return expect200(p.http, host, d.Name("own")) })
	for _, h := range []string{dockertest.DecoyVHost, "unknown-" + d.RunID + ".test"} {
		if code, body, err := get(p.http, h); err != nil || code != 404 {
			t.Errorf("Host %s: %d %q (%v), want the default server's 404", h, code, body, err)
		}
	}
	if err := porticotest.ServesDecoy(p.http); err != nil {
		t.Error(err)
	}
	ep, err := store.ReadEndpoint(p.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := store.Connect(store.Config{Endpoints: []string{ep}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, store.NewKeys(store.DefaultPrefix).Containers(), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if strings.Contains(string(kv.Key), decoy) || strings.Contains(string(kv.Value), dockertest.DecoyVHost) {
			t.Errorf("the store holds a record of the decoy: %s", kv.Key)
		}
	}

	// The control: the decoy is a valid default route that a portico
	// which sees it serves.
	ctl := &pipeline{dataDir: t.TempDir(), http: addr(freePort(t))}
	start(t, nil, "run", "--data-dir", ctl.dataDir, "--http-addr", ctl.http, "--https-addr", "",
		"--network", net, "--host", "control-"+d.RunID,
		"--label-filter", dockertest.DecoyLabel+"="+dockertest.DecoyID())
	want := "name=" + dockertest.DecoyContainerName()
	eventually(t, 60*time.Second, "the control serves the decoy, by name and as the default", func() error {
		if err := expect200(ctl.http, dockertest.DecoyVHost, want); err != nil {
			return err
		}
		if err := expect200(ctl.http, "unknown-"+d.RunID+".test", want); err != nil {
			return fmt.Errorf("default server: %w", err)
		}
		return nil
	})
}
