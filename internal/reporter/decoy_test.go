package reporter_test

import (
	"context"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/reporter"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
)

// TestDecoyNotReported is the guard of the shared Docker daemon: the decoy
// container (every Portico label, portico.default=true, not the run label;
// dockertest.WithDecoy) runs, and the reporter the tests start (h.start, its
// default label filter) reports this test's container and nothing else. A
// control reporter filtered on the decoy's own label does report it, so the
// first one ignores it because of its filter, not by accident.
func TestDecoyNotReported(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	decoy := h.env.RequireDecoy(t)
	own := h.env.Run(t, dockertest.RunOptions{Name: "own", Labels: map[string]string{"portico.vhost": "own-" + h.env.RunID + ".test"}})

	rr := h.start(t, reporter.Config{})
	rr.waitSynced(t)
	h.waitRecord(t, own, "record of the test's own container", state("running"))
	resp, err := h.etcd.Client.Get(context.Background(), keys.HostContainers(h.host), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if c, err := store.DecodeContainer(string(kv.Key), kv.Value); err != nil || c.ID != own {
			t.Errorf("the reporter reported a container that is not the test's: %s = %s", kv.Key, kv.Value)
		}
	}
	if _, ok := h.record(t, decoy); ok {
		t.Errorf("the decoy %s was reported", decoy)
	}

	// The control: a reporter on another host name, filtered on the decoy.
	ctl := &harness{env: h.env, etcd: h.etcd, host: "control-" + h.env.RunID}
	ctl.start(t, reporter.Config{Labels: []string{dockertest.DecoyLabel + "=" + dockertest.DecoyID()}}).waitSynced(t)
	c, _ := ctl.waitRecord(t, decoy, "the control reports the decoy", state("running"))
	if c.Labels["portico.default"] != "true" || c.Env["VIRTUAL_HOST"] != dockertest.DecoyVHost {
		t.Errorf("the decoy's record lacks its labels: %+v", c)
	}
}
