package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
)

// TestEtcdAuthRolesConfineEachStage runs the stages against an external
// etcd with auth enabled by `portico etcd-setup`, each with its own user:
// the pipeline works (a container is served, its certificate issued, the
// nginx stage reports), and each user is refused what its role does not
// allow — a reporter cannot write certs/ nor another host's records or
// liveness keys, the nginx stage cannot write records nor another
// instance's status; the reporter's own role suffices for its heartbeat.
func TestEtcdAuthRolesConfineEachStage(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "etcdauth")
	etcd := startEtcdProc(t, etcdProcBinary(t), t.TempDir())
	keys := store.NewKeys(store.DefaultPrefix)
	host, otherHost := "e2e-"+d.RunID, "other-"+d.RunID
	inst, otherInst := "edge-"+d.RunID, "edge2-"+d.RunID

	pwDir := t.TempDir()
	pwFile := func(user string) string { return filepath.Join(pwDir, user) }
	users := []string{"portico-reporter-" + host, "portico-reporter-" + otherHost, "portico-nginx-" + inst, "portico-certs", "portico-reader"}
	for _, u := range append(users, "root") {
		if err := os.WriteFile(pwFile(u), []byte("pw-"+u+"-"+d.RunID+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setup := func() string {
		t.Helper()
		out, err := exec.Command(binary, "etcd-setup", "--etcd-endpoints", etcd.url, "--etcd-user", "root", "--etcd-password-file", pwFile("root"),
			"--etcd-allow-plaintext-password", "--reporter-host", host+","+otherHost, "--nginx-instance", inst,
			"--passwords-dir", pwDir, "--enable-auth").CombinedOutput()
		if err != nil {
			t.Fatalf("portico etcd-setup: %v\n%s", err, out)
		}
		return string(out)
	}
	first := setup()
	t.Logf("etcd-setup:\n%s", first)
	if !strings.Contains(first, "enabled auth") {
		t.Fatalf("etcd-setup did not enable auth:\n%s", first)
	}
	if again := setup(); strings.Contains(again, "added") || strings.Contains(again, "revoked") || strings.Contains(again, "enabled") {
		t.Errorf("a second etcd-setup changed more than passwords:\n%s", again)
	}

	creds := func(user string) []string {
		return []string{"--etcd-endpoints", etcd.url, "--etcd-user", user, "--etcd-password-file", pwFile(user), "--etcd-allow-plaintext-password"}
	}
	httpAddr := addr(freePort(t))
	start(t, nil, append([]string{"reporter", "--host", host, "--label-filter", dockertest.RunLabel + "=" + d.RunID}, creds(users[0])...)...)
	start(t, nil, append([]string{"nginx", "--instance", inst, "--data-dir", t.TempDir(), "--http-addr", httpAddr, "--https-addr", "", "--network", net}, creds(users[2])...)...)
	start(t, nil, append([]string{"certs", "--network", net}, creds(users[3])...)...)

	vhost := "auth-" + d.RunID + ".test"
	d.Run(t, dockertest.RunOptions{Name: "app", Network: net, Labels: vhostLabels(vhost)})
	eventually(t, 30*time.Second, "the reporter's and nginx stage's users suffice to serve the site", func() error {
		return expect200(httpAddr, vhost, d.Name("app"))
	})

	root := authClient(t, etcd.url, "root", pwFile("root"))
	eventually(t, 30*time.Second, "the certs user suffices to issue a certificate (lock, data, state)", func() error {
		return exists(root, keys.CertBundle(vhost))
	})
	eventually(t, 10*time.Second, "the nginx user writes its own status", func() error {
		return exists(root, keys.NginxStatus(inst))
	})
	eventually(t, 10*time.Second, "the reporter user keeps its host's heartbeat (a leased key) and last-seen key", func() error {
		if err := exists(root, keys.HostAlive(host)); err != nil {
			return err
		}
		return exists(root, keys.HostSeen(host))
	})

	rep := authClient(t, etcd.url, users[0], pwFile(users[0]))
	ngx := authClient(t, etcd.url, users[2], pwFile(users[2]))
	crt := authClient(t, etcd.url, users[3], pwFile(users[3]))
	rdr := authClient(t, etcd.url, users[4], pwFile(users[4]))
	anon, err := store.Connect(store.Config{Endpoints: []string{etcd.url}})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()

	record := `{"id":"probe","host":"` + host + `"}`
	checkRoles(t, record, []roleCase{
		{"reporter", rep, "put", keys.Container(host, "probe"), true},
		{"reporter", rep, "put", keys.Container(otherHost, "probe"), false},
		{"reporter", rep, "put", keys.CertBundle(vhost), false},
		{"reporter", rep, "put", keys.LocalCA(), false},
		{"reporter", rep, "put", keys.NginxStatus(inst), false},
		{"reporter", rep, "get", keys.LocalCA(), false},
		{"reporter", rep, "get", keys.Containers(), false},
		{"reporter", rep, "put", keys.HostAlive(otherHost), false},
		{"reporter", rep, "put", keys.HostSeen(otherHost), false},
		{"nginx", ngx, "get", keys.HostAlive(host), true},
		{"nginx", ngx, "put", keys.HostAlive(host), false},
		{"certs", crt, "get", keys.HostSeen(host), true},
		{"certs", crt, "put", keys.HostSeen(host), false},
		{"nginx", ngx, "put", keys.Container(host, "probe"), false},
		{"nginx", ngx, "put", keys.NginxStatus(otherInst), false},
		{"nginx", ngx, "put", keys.CertBundle(vhost), false},
		{"nginx", ngx, "get", keys.LocalCA(), false},
		{"nginx", ngx, "get", keys.CertBundle(vhost), true},
		{"certs", crt, "put", keys.Container(host, "probe"), false},
		{"certs", crt, "put", keys.NginxStatus(inst), false},
		{"certs", crt, "get", keys.LocalCA(), true},
		{"reader", rdr, "put", keys.Container(host, "probe"), false},
		{"reader", rdr, "get", keys.LocalCA(), true},
		{"no user", anon, "get", keys.Containers(), false},
		{"no user", anon, "put", keys.Container(host, "probe"), false},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	root.Delete(ctx, keys.Container(host, "probe"))

	// portico status with the read-only user.
	st := statusJSON(t, append(creds(users[4]), "--network", net)...)
	if routes, _ := st["routes"].([]any); !strings.Contains(fmt.Sprint(routes), vhost) {
		t.Errorf("portico status as %s lists no route for %s: %v", users[4], vhost, st["routes"])
	}
}

// authClient connects as user with the password in file.
func authClient(t *testing.T, url, user, file string) *clientv3.Client {
	t.Helper()
	pw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := store.Connect(store.Config{Endpoints: []string{url}, Username: user, Password: strings.TrimSpace(string(pw)), AllowPlaintextPassword: true})
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func exists(cli *clientv3.Client, key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err == nil && len(resp.Kvs) == 0 {
		err = fmt.Errorf("no %s yet", key)
	}
	return err
}

// roleCase is one thing a stage's etcd user tries: op ("get" or "put") on
// key, and whether its role allows it.
type roleCase struct {
	who     string
	cli     *clientv3.Client
	op, key string
	allowed bool
}

// checkRoles tries each case (a put writes record) and fails the test
// where the store allows what it should refuse, or refuses otherwise than
// by permission.
func checkRoles(t *testing.T, record string, cases []roleCase) {
	t.Helper()
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var err error
		if c.op == "put" {
			_, err = c.cli.Put(ctx, c.key, record)
		} else {
			_, err = c.cli.Get(ctx, c.key)
		}
		cancel()
		switch {
		case c.allowed && err != nil:
			t.Errorf("%s %s %s: %v, want allowed", c.who, c.op, c.key, err)
		case !c.allowed && err == nil:
			t.Errorf("%s could %s %s", c.who, c.op, c.key)
		case !c.allowed && !strings.Contains(err.Error(), "permission denied") && !strings.Contains(err.Error(), "user name is empty"):
			t.Errorf("%s %s %s: %v, want permission denied", c.who, c.op, c.key, err)
		}
	}
}
