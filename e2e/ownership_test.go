package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/testenv/dockertest"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// TestVhostOwnershipByCreateRevision: "zzz-owner" claims a vhost first; the
// later "aaa-intruder", whose name sorts first, claims it with a conflicting
// setting. The vhost keeps serving the owner, status shows an error naming
// both, a replica with identical settings joins, and after a restart of
// portico on the same data dir the owner still holds the name.
func TestVhostOwnershipByCreateRevision(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "owner")
	p := startRun(t, d, net)
	host := "owned-" + d.RunID + ".test"
	owner, intruder, replica := d.Name("zzz-owner"), d.Name("aaa-intruder"), d.Name("mmm-replica")
	ownerLabels := map[string]string{"portico.vhost": host, "portico.https": "off"}

	d.Run(t, dockertest.RunOptions{Name: "zzz-owner", Network: net, Labels: ownerLabels})
	eventually(t, 15*time.Second, "owner serves", func() error { return expect200(p.http, host, "name="+owner+" ") })

	// Under name order the intruder would take the vhost over and serve it.
	d.Run(t, dockertest.RunOptions{Name: "aaa-intruder", Network: net,
		Labels: map[string]string{"portico.vhost": host, "portico.https": "both"}})
	conflictShown := func() error {
		st, err := porticotest.TryStatusJSON(binary, "--data-dir", p.dataDir)
		if err != nil {
			return err
		}
		probs, _ := st["problems"].([]any)
		for _, pr := range probs {
			m := pr.(map[string]any)
			msg := fmt.Sprint(m["message"])
			if m["container"] == intruder && m["severity"] == "error" && m["label"] == "portico.vhost" && m["value"] == host &&
				strings.Contains(msg, `"`+owner+`"`) {
				return nil
			}
		}
		return fmt.Errorf("no error on %s naming %s: %v", intruder, owner, probs)
	}
	eventually(t, 15*time.Second, "status names the intruder and the owner", conflictShown)
	onlyOwner := func(what string) {
		t.Helper()
		for i := range 20 {
			if err := expect200(p.http, host, "name="+owner+" "); err != nil {
				t.Fatalf("%s: request %d: %v", what, i, err)
			}
		}
	}
	onlyOwner("with the intruder running")

	// A replica with identical settings joins the owner's upstream.
	d.Run(t, dockertest.RunOptions{Name: "mmm-replica", Network: net, Labels: ownerLabels})
	bothServe := func() error {
		seen := map[string]bool{}
		for range 30 {
			code, body, err := get(p.http, host)
			if err != nil || code != 200 {
				return fmt.Errorf("GET: %d %v", code, err)
			}
			for _, n := range []string{owner, replica, intruder} {
				if strings.Contains(body, "name="+n+" ") {
					seen[n] = true
				}
			}
		}
		if seen[intruder] {
			return fmt.Errorf("intruder served the vhost")
		}
		if !seen[owner] || !seen[replica] {
			return fmt.Errorf("saw only %v in 30 requests", seen)
		}
		return nil
	}
	eventually(t, 15*time.Second, "owner and replica both serve", bothServe)

	// Restart portico on the same data dir: the records keep their create
	// revisions, so the owner keeps the name.
	p.proc.Stop()
	p.proc = start(t, nil, "run",
		"--data-dir", p.dataDir,
		"--http-addr", p.http,
		"--https-addr", p.https,
		"--metrics-addr", p.metrics,
		"--network", net,
		"--host", "e2e-"+d.RunID,
		"--log-level", "debug",
		"--label-filter", dockertest.RunLabel+"="+d.RunID,
	)
	eventually(t, 60*time.Second, "owner and replica serve after the restart", bothServe)
	eventually(t, 15*time.Second, "status still names the intruder and the owner", conflictShown)
}
