package dockertest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// The decoy: one container per test binary that uses Docker, running for
// the whole test run, that carries every label and environment variable
// Portico reads (portico.default=true among them) and not the tests' run
// label. Every portico and reporter a test starts must ignore it, as they
// must ignore every other container on the shared daemon: the guard tests
// (TestDecoyIgnored in e2e, TestDecoyNotReported in internal/reporter) and
// porticotest.Start's end-of-test check fail when one does not.

// Re-exported from porticotest, which cannot import this package.
const (
	DecoyLabel = porticotest.DecoyLabel
	DecoyVHost = porticotest.DecoyVHost
)

// decoyID names this test binary's decoy. It is set once, when the package
// is initialised, and never changes.
var decoyID = randomID()

// DecoyID is the value of DecoyLabel on this test binary's decoy.
func DecoyID() string { return decoyID }

// DecoyContainerName is the name of this test binary's decoy.
func DecoyContainerName() string { return porticotest.DecoyName + "-" + decoyID }

// DecoyLabels are the decoy's labels: every portico.* and com.chameth.*
// label routing reads (internal/routing/labels.go), with values that route
// it as the default server over HTTP and HTTPS, plus DecoyLabel. They agree
// with DecoyEnv, so a portico that sees the decoy accepts it.
func DecoyLabels() map[string]string {
	return map[string]string{
		routing.LabelVhost:    DecoyVHost,
		routing.LabelPort:     "80",
		routing.LabelProtocol: "http",
		routing.LabelNetwork:  "bridge", // Docker's default network, where it runs
		routing.LabelDefault:  "true",
		routing.LabelEnable:   "true",
		routing.LabelHTTPS:    routing.HTTPSBoth, // served over plain HTTP too
		routing.LabelHSTS:     "false",
		routing.LabelAddress:  routing.AddressContainer, // its bridge address, as auto gives on one host
		// Per-site options, each set to a value that changes nothing the
		// control test sees (DecoyExempt lists those that would).
		routing.LabelRedirectFrom:    "www." + DecoyVHost,
		routing.LabelSecurityHeaders: "false",
		routing.LabelPath:            "/",
		routing.LabelStripPath:       "false",
		routing.LabelAllow:           "0.0.0.0/0,::/0",
		routing.LabelMaxBody:         "1m",
		routing.LabelTimeout:         "60s",
		routing.LabelConnectTimeout:  "5s",
		routing.LabelRate:            "1000r/s",
		routing.LabelRateBurst:       "10",
		routing.LegacyVhost:          DecoyVHost,
		routing.LegacyPort:           "80",
		routing.LegacyProtocol:       "http",
		routing.LegacyDefault:        "true",
		DecoyLabel:                   decoyID,
	}
}

// DecoyExempt are the labels and variables Portico reads that the decoy
// does not carry, because each changes what the control test of
// TestDecoyIgnored must see (a 200 from the decoy): a FastCGI document root
// (only read for fastcgi, which the decoy does not speak), a redirect of the
// whole vhost, and a password.
var DecoyExempt = []string{routing.LabelRoot, routing.EnvVirtualRoot, routing.LabelRedirectTo, routing.LabelRedirectCode,
	routing.LabelRedirectKeepPath, routing.LabelAuthFile}

// DecoyEnv is the decoy's environment: every variable Portico reads
// (routing.AllowedEnv), agreeing with DecoyLabels.
func DecoyEnv() map[string]string {
	return map[string]string{
		routing.EnvVirtualHost:     DecoyVHost,
		routing.EnvVirtualPort:     "80",
		routing.EnvVirtualProto:    "http",
		routing.EnvVirtualPath:     "/",
		routing.EnvVirtualDest:     "/",
		routing.EnvLetsEncryptHost: DecoyVHost,
		routing.EnvACMEHost:        DecoyVHost,
		routing.EnvHTTPSMethod:     "noredirect", // portico.https=both
		routing.EnvHSTS:            "off",        // portico.hsts=false
	}
}

// WithDecoy wraps a TestMain's m: its Run starts the decoy, runs the
// tests, and removes the decoy, whatever they did. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(dockertest.WithDecoy(m).Run()) }
//
// (or pass it to porticotest.Main). Docker unreachable, or a decoy that
// does not start, fails the run (exit code 1): it is not skipped.
func WithDecoy(m interface{ Run() int }) interface{ Run() int } { return decoyRunner{m} }

type decoyRunner struct{ m interface{ Run() int } }

func (r decoyRunner) Run() int {
	if !flag.Parsed() {
		flag.Parse()
	}
	// The decoy's backend exits on its own (and Docker removes it) some
	// time after the run's own deadline, should the run be killed before
	// it can remove it.
	life := 24 * time.Hour
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, err := time.ParseDuration(f.Value.String()); err == nil && d > 0 {
			life = d + 10*time.Minute
		}
	}
	cli, id, err := startDecoy(life)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dockertest: start the decoy container: %v\n", err)
		if cli != nil {
			cli.Close()
		}
		return 1
	}
	defer cli.Close()
	code := 1
	defer func() {
		if err := removeDecoy(cli, id); err != nil {
			fmt.Fprintf(os.Stderr, "dockertest: remove the decoy container %s: %v\n", id, err)
			code = 1
		}
	}()
	code = r.m.Run()
	return code
}

func startDecoy(life time.Duration) (*client.Client, string, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, "", fmt.Errorf("docker client: %w", err)
	}
	pc, pcancel := ctx()
	_, err = cli.Ping(pc, client.PingOptions{NegotiateAPIVersion: true})
	pcancel()
	if err != nil {
		return cli, "", fmt.Errorf("docker daemon unreachable at %s: %w", cli.DaemonHost(), err)
	}
	img, err := backendImage(cli)
	if err != nil {
		return cli, "", err
	}
	c, cancel := ctx()
	defer cancel()
	name := DecoyContainerName()
	env := []string{"NAME=" + name, "EXIT_AFTER=" + life.String()}
	for k, v := range DecoyEnv() {
		env = append(env, k+"="+v)
	}
	res, err := cli.ContainerCreate(c, client.ContainerCreateOptions{
		Name:       name,
		Config:     &container.Config{Image: img, Labels: DecoyLabels(), Env: env},
		HostConfig: &container.HostConfig{AutoRemove: true},
	})
	if err != nil {
		return cli, "", fmt.Errorf("create %s: %w", name, err)
	}
	if _, err := cli.ContainerStart(c, res.ID, client.ContainerStartOptions{}); err != nil {
		removeDecoy(cli, res.ID)
		return cli, "", fmt.Errorf("start %s: %w", name, err)
	}
	return cli, res.ID, nil
}

func removeDecoy(cli *client.Client, id string) error {
	c, cancel := ctx()
	defer cancel()
	_, err := cli.ContainerRemove(c, id, client.ContainerRemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// RequireDecoy fails the test unless this binary's decoy is running with
// its labels (its TestMain uses WithDecoy), and returns its container id.
func (e *Env) RequireDecoy(t testing.TB) string {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	res, err := e.Client.ContainerInspect(c, DecoyContainerName(), client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("the decoy container %s: %v (does this package's TestMain use dockertest.WithDecoy?)", DecoyContainerName(), err)
	}
	in := res.Container
	if in.State == nil || !in.State.Running {
		t.Fatalf("the decoy container %s is not running: %+v", DecoyContainerName(), in.State)
	}
	for k, v := range DecoyLabels() {
		if got := in.Config.Labels[k]; got != v {
			t.Fatalf("the decoy container %s: label %s=%q, want %q", DecoyContainerName(), k, got, v)
		}
	}
	if _, has := in.Config.Labels[RunLabel]; has {
		t.Fatalf("the decoy container %s carries the tests' run label %s", DecoyContainerName(), RunLabel)
	}
	return in.ID
}

// LabelFilter is the --label-filter value (reporter.Config.Labels entry)
// that selects exactly this Env's containers.
func (e *Env) LabelFilter() string { return RunLabel + "=" + e.RunID }
