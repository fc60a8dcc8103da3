package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
)

// TestHostileRecordsBoundedAndRejected writes hostile records straight into
// etcd, as a compromised reporter of another Docker host could, and runs a
// real container with a 35 KB vhost label, beside a good container: the good
// route keeps serving through real nginx, no hostile record is routed, and
// `portico status --json` lists each one's problems, bounded.
func TestHostileRecordsBoundedAndRejected(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "hostilerec")
	p := startRun(t, d, net)
	run := d.RunID
	good := "good-" + run + ".test"
	goodID := d.Run(t, dockertest.RunOptions{Name: "good", Network: net, Labels: vhostLabels(good)})
	eventually(t, 30*time.Second, "good container live", func() error { return expect200(p.http, good, d.Name("good")) })
	goodIP := d.IP(t, goodID, net)
	// The network's gateway is an address of this host: it reaches every
	// service the host runs on 0.0.0.0.
	gw := d.Inspect(t, goodID).NetworkSettings.Networks[net].Gateway
	if !gw.IsValid() {
		t.Fatalf("network %s has no gateway address", net)
	}
	gateway := gw.String()

	// A real container whose vhost label is 35 KB of distinct names.
	var big strings.Builder
	for i := 0; big.Len() < 35<<10; i++ {
		fmt.Fprintf(&big, "big%d-%s.test,", i, run)
	}
	d.Run(t, dockertest.RunOptions{Name: "label35k", Network: net, Labels: vhostLabels(big.String())})

	// Records of a foreign node, written straight into etcd.
	node := "foreign-" + run
	names := func(n int, f string) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, f, i)
		}
		return b.String()
	}
	type rec struct {
		host   string // the vhost it claims (first name)
		labels map[string]string
		env    map[string]string
		nw     store.Network
	}
	// Records that are not about their address use the good container's:
	// were one routed by mistake, no traffic would leave the test network.
	addr := store.Network{IPv4: goodIP}
	recs := map[string]rec{
		"loopback":   {host: "lo-" + run + ".test", nw: store.Network{IPv4: "127.0.0.1"}},
		"mapped":     {host: "mapped-" + run + ".test", nw: store.Network{IPv6: "::ffff:127.0.0.1"}},
		"linklocal":  {host: "metadata-" + run + ".test", nw: store.Network{IPv4: "169.254.169.254"}},
		"multicast":  {host: "mc-" + run + ".test", nw: store.Network{IPv6: "ff02::1"}},
		"unspecific": {host: "zero-" + run + ".test", nw: store.Network{IPv4: "0.0.0.0"}},
		"gateway":    {host: "gw-" + run + ".test", nw: store.Network{IPv4: gateway}},
		"list1mb": {host: "mb0-" + run + ".test", nw: addr,
			labels: map[string]string{"portico.vhost": names(1<<20/8, "mb%d-"+run+".test,")[:1<<20-4096]}},
		"names10k": {host: "n0-" + run + ".test", nw: addr,
			labels: map[string]string{"portico.vhost": names(10000, "n%d-"+run+".test ")}},
		"names101": {host: "o0-" + run + ".test", nw: addr,
			labels: map[string]string{"portico.vhost": names(101, "o%d-"+run+".test ")}},
		"manyproblems": {host: "mp-" + run + ".test", nw: addr,
			labels: map[string]string{"portico.vhost": "mp-" + run + ".test," + names(400, "bad_%d,")}},
		"certthief": {host: "thief-" + run + ".test", nw: addr,
			env: map[string]string{"LETSENCRYPT_HOST": "thief-" + run + ".test," + good}},
	}
	for i := range 300 {
		recs["manyproblems"].labels[fmt.Sprintf("portico.unknown%03d", i)] = strings.Repeat("v", 200)
	}
	cli := storeClient(t, p.dataDir)
	keys := store.NewKeys(store.DefaultPrefix)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, r := range recs {
		labels := map[string]string{"portico.vhost": r.host}
		for k, v := range r.labels {
			labels[k] = v
		}
		c := store.Container{ID: "id-" + name, Name: name + "-" + run, Host: node, Image: "img", State: "running",
			Labels: labels, Env: r.env, Networks: map[string]store.Network{net: r.nw}}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx, keys.Container(node, c.ID), string(b)); err != nil {
			t.Fatalf("put %s: %v", name, err)
		}
	}

	hostile := map[string]string{d.Name("label35k"): "big0-" + run + ".test"} // container name -> a vhost it claims
	for name, r := range recs {
		hostile[name+"-"+run] = r.host
	}
	var st map[string]any
	eventually(t, 30*time.Second, "status lists every hostile container's errors, bounded", func() error {
		st = statusJSON(t, "--data-dir", p.dataDir)
		per, errs := map[string]int{}, map[string]int{}
		for _, pr := range asSlice(st["problems"]) {
			m := pr.(map[string]any)
			c := fmt.Sprint(m["container"])
			per[c]++
			if m["severity"] == "error" {
				errs[c]++
			}
			if v := fmt.Sprint(m["value"]); len(v) > 128 {
				return fmt.Errorf("problem of %s holds %d bytes of value", c, len(v))
			}
		}
		var storeErrs []string
		for _, e := range asSlice(st["store_errors"]) {
			storeErrs = append(storeErrs, fmt.Sprint(e))
		}
		for c := range hostile {
			// A record over the store's size cap is a store error naming
			// its key rather than a routing problem.
			if errs[c] == 0 && strings.HasPrefix(c, "list1mb-") && strings.Contains(strings.Join(storeErrs, "\n"), "/id-list1mb") {
				continue
			}
			if errs[c] == 0 {
				return fmt.Errorf("no error for %s in %d problems", c, len(asSlice(st["problems"])))
			}
			if per[c] > 11 {
				return fmt.Errorf("%s has %d problems, over 10 plus a summary", c, per[c])
			}
		}
		if per[d.Name("good")] > 0 {
			return fmt.Errorf("problems on the good container: %d", per[d.Name("good")])
		}
		return nil
	})
	out, _ := json.Marshal(st)
	t.Logf("status --json: %d bytes for %d hostile containers, %d problems", len(out), len(hostile), len(asSlice(st["problems"])))
	if len(out) > 256<<10 {
		t.Errorf("status --json is %d bytes, want under 256 KiB", len(out))
	}
	for _, pr := range asSlice(st["problems"]) {
		m := pr.(map[string]any)
		if m["container"] == "manyproblems-"+run && m["more"] != nil {
			if more, _ := m["more"].(float64); more < 290 {
				t.Errorf("summary counts %v more problems, want at least 290", m["more"])
			}
		}
		if m["container"] == "certthief-"+run && m["severity"] == "error" && m["label"] != "LETSENCRYPT_HOST" {
			t.Errorf("certificate thief's error does not name LETSENCRYPT_HOST: %v", m)
		}
	}

	// Nothing hostile is routed; the good route keeps serving, and a new
	// container still goes live.
	for c, h := range hostile {
		if code, _, err := get(p.http, h); err != nil || code != 404 {
			t.Errorf("%s's vhost %s: %d %v, want the default 404", c, h, code, err)
		}
	}
	if err := expect200(p.http, good, d.Name("good")); err != nil {
		t.Error(err)
	}
	late := "late-" + run + ".test"
	d.Run(t, dockertest.RunOptions{Name: "late", Network: net, Labels: vhostLabels(late)})
	eventually(t, 15*time.Second, "new container live beside hostile records", func() error { return expect200(p.http, late, d.Name("late")) })

	conf, err := os.ReadFile(filepath.Join(p.dataDir, "nginx", "portico.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for c, h := range hostile {
		if strings.Contains(string(conf), h) {
			t.Errorf("config names %s's vhost %s", c, h)
		}
	}
	for _, a := range []string{"169.254.169.254", "ff02::1", "::ffff:127.0.0.1", "0.0.0.0:"} {
		if strings.Contains(string(conf), a) {
			t.Errorf("config holds address %s", a)
		}
	}
	t.Logf("portico logged %d bytes in all", p.proc.LogLen())
	if n := p.proc.LogLen(); n > 4<<20 {
		t.Errorf("portico logged %d bytes, want under 4 MiB", n)
	}
}

// TestAllowedDomainsPerNode: with --allowed-domains, another Docker host's
// reporter cannot join a vhost of this host (which would add its address as
// a replica), and a container of this host cannot claim a name outside its
// list; both are rejected with errors, the owner keeps serving alone.
func TestAllowedDomainsPerNode(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "allowlist")
	run := d.RunID
	here, foreign := "e2e-"+run, "foreign-"+run
	good := "app-" + run + ".test"
	p := startRun(t, d, net, "--allowed-domains", here+"="+good+","+foreign+"=*.tenant-"+run+".test")
	goodID := d.Run(t, dockertest.RunOptions{Name: "good", Network: net, Labels: vhostLabels(good)})
	d.Run(t, dockertest.RunOptions{Name: "outside", Network: net, Labels: vhostLabels("outside-" + run + ".test")})
	eventually(t, 30*time.Second, "allowed container live", func() error { return expect200(p.http, good, d.Name("good")) })

	goodIP := d.IP(t, goodID, net)
	cli := storeClient(t, p.dataDir)
	keys := store.NewKeys(store.DefaultPrefix)
	put := func(id, vhost string) {
		c := store.Container{ID: id, Name: id + "-" + run, Host: foreign, Image: "img", State: "running",
			Labels: vhostLabels(vhost), Networks: map[string]store.Network{net: {IPv4: goodIP}}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := store.PutJSON(ctx, cli, keys.Container(foreign, id), c); err != nil {
			t.Fatal(err)
		}
	}
	put("joiner", good)                      // would become a replica of the good vhost
	put("tenant", "www.tenant-"+run+".test") // its own, allowed
	eventually(t, 20*time.Second, "foreign claim rejected, own names routed", func() error {
		st := statusJSON(t, "--data-dir", p.dataDir, "--allowed-domains", here+"="+good+","+foreign+"=*.tenant-"+run+".test")
		for _, r := range asSlice(st["routes"]) {
			m := r.(map[string]any)
			if m["Host"] == good && len(asSlice(m["Containers"])) != 1 {
				return fmt.Errorf("route %s has containers %v", good, m["Containers"])
			}
		}
		want := map[string]bool{"joiner-" + run: false, d.Name("outside"): false}
		for _, pr := range asSlice(st["problems"]) {
			m := pr.(map[string]any)
			if _, ok := want[fmt.Sprint(m["container"])]; ok && m["severity"] == "error" && strings.Contains(fmt.Sprint(m["message"]), "--allowed-domains") {
				want[fmt.Sprint(m["container"])] = true
			}
		}
		for c, ok := range want {
			if !ok {
				return fmt.Errorf("no allow-list error for %s", c)
			}
		}
		if err := expect200(p.http, "www.tenant-"+run+".test", d.Name("good")); err != nil {
			return fmt.Errorf("tenant's own vhost not routed: %w", err)
		}
		return nil
	})
	if code, _, err := get(p.http, "outside-"+run+".test"); err != nil || code != 404 {
		t.Errorf("name outside the list: %d %v, want 404", code, err)
	}
	// The good vhost is served by its owner only: every request answers.
	for range 20 {
		if err := expect200(p.http, good, d.Name("good")); err != nil {
			t.Fatal(err)
		}
	}
}
