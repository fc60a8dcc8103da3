package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/explain"
	"github.com/portico/portico/internal/testenv/dockertest"
)

// explainRun runs `portico explain host --json` against p and decodes it;
// the exit status says whether the name is served.
func explainRun(p *pipeline, network, host string) (explain.Explanation, bool, error) {
	cmd := exec.Command(binary, "explain", "--data-dir", p.dataDir, "--network", network,
		"--http-addr", p.http, "--https-addr", p.https, "--json", host)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var x explain.Explanation
	if jerr := json.Unmarshal(out, &x); jerr != nil {
		return x, false, fmt.Errorf("explain %s: %v, %v\n%s%s", host, err, jerr, out, stderr.String())
	}
	if served := err == nil; served != x.Served {
		return x, false, fmt.Errorf("explain %s: exit %v but served=%v\n%s", host, err, x.Served, stderr.String())
	}
	return x, x.Served, nil
}

// TestExplainAgainstRun asks `portico explain` about names a real `portico
// run` serves, with real containers: a served one (its claim, upstream,
// local-CA certificate, server block and the nginx instance that applied
// it), a conflicting claim naming the owner, a rejected container and a
// name nobody claims.
func TestExplainAgainstRun(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "explain")
	p := startRun(t, d, net)

	host := "why-" + d.RunID + ".test"
	owner := d.Run(t, dockertest.RunOptions{Name: "owner", Network: net, Labels: map[string]string{"portico.vhost": host}})
	eventually(t, 15*time.Second, "labelled container reachable", func() error {
		return expect200(p.http, host, "name="+d.Name("owner"))
	})
	ip := d.IP(t, owner, net)
	bad := "bad-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "intruder", Network: net, Labels: map[string]string{"portico.vhost": host, "portico.https": "off"}})
	d.Run(t, dockertest.RunOptions{Name: "bad", Network: net, Labels: map[string]string{"portico.vhost": bad, "portico.port": "abc"}})

	var x explain.Explanation
	eventually(t, 20*time.Second, "explain: served over HTTPS with the local CA, applied, the intruder's claim rejected", func() error {
		var served bool
		var err error
		if x, served, err = explainRun(p, net, host); err != nil {
			return err
		}
		switch {
		case !served:
			return fmt.Errorf("not served: %s", x.Summary)
		case x.Certificate == nil || !x.Certificate.HTTPS || x.Certificate.Issuer != "local":
			return fmt.Errorf("certificate %+v", x.Certificate)
		case len(x.Claims) != 2:
			return fmt.Errorf("claims %+v", x.Claims)
		}
		return nil
	})
	for _, c := range x.Claims {
		switch c.Container {
		case d.Name("owner"):
			if c.Outcome != explain.ClaimAccepted || !strings.Contains(c.Key, "/containers/e2e-"+d.RunID+"/") || c.Labels["portico.vhost"] != host {
				t.Errorf("owner's claim %+v", c)
			}
			if c.Settings == nil || c.Settings.Addr != ip+":80" {
				t.Errorf("owner's settings %+v, want upstream %s:80", c.Settings, ip)
			}
		case d.Name("intruder"):
			if c.Outcome != explain.ClaimConflict || !strings.Contains(c.Reason, d.Name("owner")) {
				t.Errorf("intruder's claim %+v: want a conflict naming the owner", c)
			}
		default:
			t.Errorf("unexpected claim %+v", c)
		}
	}
	if x.Route == nil || strings.Join(x.Route.Upstreams, ",") != ip+":80" {
		t.Errorf("route %+v, want upstream %s:80", x.Route, ip)
	}
	if !strings.Contains(x.ServerBlock, "server_name "+host+";") || !strings.Contains(x.ServerBlock, "server "+ip+":80;") {
		t.Errorf("server block:\n%s", x.ServerBlock)
	}
	if len(x.Nginx) != 1 || x.Nginx[0].State != explain.InstanceApplied {
		t.Errorf("nginx %+v, want one instance that applied the route", x.Nginx)
	}

	for name, want := range map[string]string{bad: `rejected: container "` + d.Name("bad") + `": label portico.port="abc"`, "nobody-" + d.RunID + ".test": "no claim"} {
		x, served, err := explainRun(p, net, name)
		if err != nil {
			t.Fatal(err)
		}
		if served || !strings.Contains(x.Summary, want) {
			t.Errorf("explain %s: served=%v summary %q, want not served: %q", name, served, x.Summary, want)
		}
	}

	// Text mode names the same chain.
	out, err := exec.Command(binary, "explain", "--data-dir", p.dataDir, "--network", net, host).CombinedOutput()
	if err != nil {
		t.Fatalf("explain %s (text): %v\n%s", host, err, out)
	}
	for _, want := range []string{host + " is served over HTTP and HTTPS", "1. CLAIMS (2)", "5. SERVER BLOCK", "applied"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}
