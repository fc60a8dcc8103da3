package dockertest

import (
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDaemonOnTestHost: a second dockerd on a test host of a LAN runs a
// container published on all of the host's addresses, reached from the
// root namespace at the host's LAN address; stopped, the daemon leaves the
// container serving (live-restore); cleanup leaves no namespace, process,
// cgroup or dir behind.
func TestDaemonOnTestHost(t *testing.T) {
	t.Parallel()
	env := New(t)
	img := env.Image(t)
	var lanNS, hostNS, dir, cgroup string
	t.Run("daemon", func(t *testing.T) {
		lan := NewLAN(t)
		h := lan.AddHost(t, "b")
		d := StartDaemon(t, h)
		lanNS, hostNS, dir, cgroup = lan.ns, h.NS, d.dir, d.cgroup
		d.LoadImages(t, env.Client, img)
		b := d.Env(env.RunID)
		id := b.Run(t, RunOptions{Name: "web", Image: img, PublishIP: netip.IPv4Unspecified(), Publish: map[string]string{"80/tcp": ""}})
		ports := b.Inspect(t, id).NetworkSettings.Ports
		var hostPort string
		for _, bs := range ports {
			for _, pb := range bs {
				hostPort = pb.HostPort
			}
		}
		url := "http://" + h.Addr.String() + ":" + hostPort + "/"
		want := "name=" + env.Name("web")
		get := func() error {
			resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(body), want) {
				return &unexpected{string(body)}
			}
			return nil
		}
		Poll(t, 10*time.Second, "GET "+url, get)
		d.Stop(t)
		if err := get(); err != nil {
			t.Errorf("after the daemon stopped (live-restore): GET %s: %v", url, err)
		}
	})
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), lanNS) || strings.Contains(string(out), hostNS) {
		t.Errorf("namespaces left: %s", out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("daemon dir %s left: %v", dir, err)
	}
	if left, _ := os.ReadDir("/sys/fs/cgroup/pids/" + cgroup); left != nil {
		t.Errorf("cgroup %s left", cgroup)
	}
}

type unexpected struct{ body string }

func (u *unexpected) Error() string { return "unexpected body " + u.body }

// TestFreePrefixAvoidsRoutes: a test LAN's prefix overlaps no route or
// address the machine has; "default" is not counted.
func TestFreePrefixAvoidsRoutes(t *testing.T) {
	routes := "default via 192.0.2.1 dev eth0\n10.0.0.0/8 dev x scope link\n" +
		"local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1\n" +
		"broadcast 172.17.255.255 dev docker0 table local\n"
	addrs := "2: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\n"
	used := usedPrefixes(routes, addrs)
	for _, tt := range []struct {
		p    string
		want bool
	}{
		{"10.1.2.0/28", true},
		{"192.0.2.16/28", true},
		{"127.0.0.0/28", true},
		{"172.17.255.240/28", true},
		{"172.18.0.0/28", false},
		{"11.0.0.0/28", false},
	} {
		if got := overlapsAny(netip.MustParsePrefix(tt.p), used); got != tt.want {
			t.Errorf("%s overlaps %v: %v, want %v", tt.p, used, got, tt.want)
		}
	}
	if got := lastAddr(netip.MustParsePrefix("10.9.8.16/28")); got.String() != "10.9.8.31" {
		t.Errorf("lastAddr = %s", got)
	}
}
