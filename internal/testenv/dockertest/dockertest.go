// Package dockertest runs labelled containers and networks on the real Docker
// daemon for tests, and builds the test backend image (internal/testenv/backend)
// FROM scratch, since no registry is reachable.
//
// Every object an Env creates carries the label RunLabel=<Env.RunID> and a
// name suffixed with the run id, so parallel test packages never collide, and
// t.Cleanup removes them by that label even when the test fails.
package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/portico/portico/internal/testenv/porticotest"
)

// RunLabel marks every container and network an Env creates.
const RunLabel = porticotest.RunLabel

// BackendPackage is the Go package built into the test image.
const BackendPackage = "github.com/portico/portico/internal/testenv/backend"

// opTimeout bounds each Docker call a helper makes.
const opTimeout = 60 * time.Second

// Env is one test's handle on the Docker daemon.
type Env struct {
	// Client is the Docker client (DOCKER_HOST honoured).
	Client *client.Client
	// RunID is unique per Env; it is the value of RunLabel and the name suffix.
	RunID string
}

// New connects to Docker and fails the test if the daemon is unreachable.
// Cleanup force-removes every container and network labelled with the run id.
func New(t testing.TB) *Env {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		t.Fatalf("docker daemon unreachable at %s: %v", cli.DaemonHost(), err)
	}
	e := &Env{Client: cli, RunID: randomID()}
	t.Cleanup(func() {
		e.cleanup(t)
		cli.Close()
	})
	return e
}

func randomID() string {
	b := make([]byte, 5)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Labels returns the run label plus extra, for objects created by hand.
func (e *Env) Labels(extra map[string]string) map[string]string {
	l := map[string]string{RunLabel: e.RunID}
	for k, v := range extra {
		l[k] = v
	}
	return l
}

// Name suffixes name with the run id.
func (e *Env) Name(name string) string { return name + "-" + e.RunID }

// Filter selects the objects of this run.
func (e *Env) Filter() client.Filters {
	return make(client.Filters).Add("label", RunLabel+"="+e.RunID)
}

func (e *Env) cleanup(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	cs, err := e.Client.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: e.Filter()})
	if err != nil {
		t.Errorf("cleanup: list containers of run %s: %v", e.RunID, err)
	}
	for _, c := range cs.Items {
		if _, err := e.Client.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("cleanup: remove container %s: %v", c.ID, err)
		}
	}
	ns, err := e.Client.NetworkList(ctx, client.NetworkListOptions{Filters: e.Filter()})
	if err != nil {
		t.Errorf("cleanup: list networks of run %s: %v", e.RunID, err)
	}
	for _, n := range ns.Items {
		if _, err := e.Client.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("cleanup: remove network %s: %v", n.Name, err)
		}
	}
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// Image builds the backend binary (CGO_ENABLED=0) and returns the tag
// portico-test-backend:<hash of the binary>, building the image FROM scratch
// only when the daemon does not have that tag yet.
func (e *Env) Image(t testing.TB) string {
	t.Helper()
	tag, err := backendImage(e.Client)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

// backendImage is Image without a test: it returns the error.
func backendImage(cli *client.Client) (string, error) {
	dir, err := os.MkdirTemp("", "portico-backend-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "backend")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, BackendPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", BackendPackage, err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", fmt.Errorf("read backend binary: %w", err)
	}
	sum := sha256.Sum256(data)
	tag := "portico-test-backend:" + hex.EncodeToString(sum[:])[:16]

	c, cancel := ctx()
	defer cancel()
	if _, err := cli.ImageInspect(c, tag); err == nil {
		return tag, nil
	} else if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("inspect image %s: %w", tag, err)
	}

	dockerfile := "FROM scratch\nCOPY backend /backend\nEXPOSE 80\nENTRYPOINT [\"/backend\"]\n"
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"backend", 0o755, data}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return "", fmt.Errorf("build context: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", fmt.Errorf("build context: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("build context: %w", err)
	}
	res, err := cli.ImageBuild(c, &buf, client.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", tag, err)
	}
	defer res.Body.Close()
	var log strings.Builder
	dec := json.NewDecoder(res.Body)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return "", fmt.Errorf("build image %s: read output: %w\n%s", tag, err, log.String())
		}
		log.WriteString(m.Stream)
		if m.Error != nil {
			return "", fmt.Errorf("build image %s: %s\n%s", tag, m.Error.Message, log.String())
		}
	}
	return tag, nil
}

// Network creates a bridge network named name-<run id>, labelled with the run
// label, and returns its name.
func (e *Env) Network(t testing.TB, name string) string {
	t.Helper()
	full := e.Name(name)
	c, cancel := ctx()
	defer cancel()
	if _, err := e.Client.NetworkCreate(c, full, client.NetworkCreateOptions{Driver: "bridge", Labels: e.Labels(nil)}); err != nil {
		t.Fatalf("create network %s: %v", full, err)
	}
	return full
}

// RunOptions describes a container to run.
type RunOptions struct {
	// Name is suffixed with the run id; "" lets Docker pick one.
	Name string
	// Image defaults to the backend image (Env.Image).
	Image string
	// Labels are added to the run label.
	Labels map[string]string
	// Env is KEY=value pairs. NAME=<full name> is added for the backend
	// unless Env sets NAME.
	Env []string
	// Network is the network to attach first ("" = Docker's default bridge).
	Network string
	// Cmd is passed to the image's entrypoint.
	Cmd []string
	// Publish maps container ports ("80/tcp") to host ports ("" = any free
	// port), bound on PublishIP.
	Publish map[string]string
	// PublishIP is the host address the ports are bound on; the zero
	// address is 127.0.0.1. The unspecified address (0.0.0.0) binds every
	// address of the daemon's host: only for a daemon in a network
	// namespace of the test's own (Daemon), never the shared one.
	PublishIP netip.Addr
	// Healthcheck, if set, is the container's health check.
	Healthcheck *container.HealthConfig
	// NoStart only creates the container.
	NoStart bool
	// StopSignal and StopTimeout (seconds), if set, are the container's
	// (`docker run --stop-signal`, `--stop-timeout`).
	StopSignal  string
	StopTimeout *int
}

// Run creates and (unless NoStart) starts a container and returns its id.
func (e *Env) Run(t testing.TB, o RunOptions) string {
	t.Helper()
	img := o.Image
	if img == "" {
		img = e.Image(t)
	}
	name := ""
	if o.Name != "" {
		name = e.Name(o.Name)
	}
	env := o.Env
	if name != "" && !hasKey(env, "NAME") {
		env = append(append([]string(nil), env...), "NAME="+name)
	}
	cfg := &container.Config{
		Image:       img,
		Labels:      e.Labels(o.Labels),
		Env:         env,
		Cmd:         o.Cmd,
		Healthcheck: o.Healthcheck,
		StopSignal:  o.StopSignal,
		StopTimeout: o.StopTimeout,
	}
	hc := &container.HostConfig{}
	if o.Network != "" {
		hc.NetworkMode = container.NetworkMode(o.Network)
	}
	if len(o.Publish) > 0 {
		cfg.ExposedPorts = network.PortSet{}
		hc.PortBindings = network.PortMap{}
		hostIP := o.PublishIP
		if !hostIP.IsValid() {
			hostIP = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		for cp, hp := range o.Publish {
			p, err := network.ParsePort(cp)
			if err != nil {
				t.Fatalf("publish %q: %v", cp, err)
			}
			cfg.ExposedPorts[p] = struct{}{}
			hc.PortBindings[p] = []network.PortBinding{{HostIP: hostIP, HostPort: hp}}
		}
	}
	c, cancel := ctx()
	defer cancel()
	res, err := e.Client.ContainerCreate(c, client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: hc})
	if err != nil {
		t.Fatalf("create container %q from %s: %v", name, img, err)
	}
	if !o.NoStart {
		e.Start(t, res.ID)
	}
	return res.ID
}

func hasKey(env []string, key string) bool {
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}

// Start starts a container.
func (e *Env) Start(t testing.TB, id string) {
	t.Helper()
	if err := e.TryStart(id); err != nil {
		t.Fatal(err)
	}
}

// TryStart starts a container and returns the error; unlike Start it may be
// called from any goroutine.
func (e *Env) TryStart(id string) error {
	c, cancel := ctx()
	defer cancel()
	if _, err := e.Client.ContainerStart(c, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	return nil
}

// Stop stops a container, killing it after one second.
func (e *Env) Stop(t testing.TB, id string) {
	t.Helper()
	c, cancel := ctx()
	defer cancel()
	timeout := 1
	if _, err := e.Client.ContainerStop(c, id, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		t.Fatalf("stop container %s: %v", id, err)
	}
}

// TryStop stops a container as `docker stop -t` does: its stop signal, then
// SIGKILL after timeout (whole seconds). It returns when the container is
// down, and the error; unlike Stop it may be called from any goroutine.
func (e *Env) TryStop(id string, timeout time.Duration) error {
	c, cancel := context.WithTimeout(context.Background(), opTimeout+timeout)
	defer cancel()
	secs := int(timeout / time.Second)
	if _, err := e.Client.ContainerStop(c, id, client.ContainerStopOptions{Timeout: &secs}); err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	return nil
}

// Kill sends a container a signal ("SIGHUP", "15"), as `docker kill -s`.
func (e *Env) Kill(t testing.TB, id, signal string) {
	t.Helper()
	c, cancel := ctx()
	defer cancel()
	if _, err := e.Client.ContainerKill(c, id, client.ContainerKillOptions{Signal: signal}); err != nil {
		t.Fatalf("send %s to container %s: %v", signal, id, err)
	}
}

// Remove force-removes a container.
func (e *Env) Remove(t testing.TB, id string) {
	t.Helper()
	c, cancel := ctx()
	defer cancel()
	if _, err := e.Client.ContainerRemove(c, id, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatalf("remove container %s: %v", id, err)
	}
}

// Rename renames a container to name-<run id> and returns the new name.
func (e *Env) Rename(t testing.TB, id, name string) string {
	t.Helper()
	full := e.Name(name)
	c, cancel := ctx()
	defer cancel()
	if _, err := e.Client.ContainerRename(c, id, client.ContainerRenameOptions{NewName: full}); err != nil {
		t.Fatalf("rename container %s to %s: %v", id, full, err)
	}
	return full
}

// Pause pauses a container.
func (e *Env) Pause(t testing.TB, id string) {
	t.Helper()
	c, cancel := ctx()
	defer cancel()
	if _, err := e.Client.ContainerPause(c, id, client.ContainerPauseOptions{}); err != nil {
		t.Fatalf("pause container %s: %v", id, err)
	}
}

// Unpause resumes a paused container.
func (e *Env) Unpause(t testing.TB, id string) {
	t.Helper()
	c, cancel := ctx()
	defer cancel()
	if _, err := e.Client.ContainerUnpause(c, id, client.ContainerUnpauseOptions{}); err != nil {
		t.Fatalf("unpause container %s: %v", id, err)
	}
}

// Connect attaches a container to a network.
func (e *Env) Connect(t testing.TB, id, network string) {
	t.Helper()
	c, cancel := ctx()
	defer cancel()
	if _, err := e.Client.NetworkConnect(c, network, client.NetworkConnectOptions{Container: id}); err != nil {
		t.Fatalf("connect container %s to network %s: %v", id, network, err)
	}
}

// Disconnect detaches a container from a network.
func (e *Env) Disconnect(t testing.TB, id, network string) {
	t.Helper()
	c, cancel := ctx()
	defer cancel()
	if _, err := e.Client.NetworkDisconnect(c, network, client.NetworkDisconnectOptions{Container: id, Force: true}); err != nil {
		t.Fatalf("disconnect container %s from network %s: %v", id, network, err)
	}
}

// Inspect returns Docker's view of a container.
func (e *Env) Inspect(t testing.TB, id string) container.InspectResponse {
	t.Helper()
	c, cancel := ctx()
	defer cancel()
	res, err := e.Client.ContainerInspect(c, id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect container %s: %v", id, err)
	}
	return res.Container
}

// IP returns the container's IPv4 address on network; it fails the test if
// the container has none there.
func (e *Env) IP(t testing.TB, id, network string) string {
	t.Helper()
	in := e.Inspect(t, id)
	if in.NetworkSettings != nil {
		if ep := in.NetworkSettings.Networks[network]; ep != nil && ep.IPAddress.IsValid() {
			return ep.IPAddress.String()
		}
	}
	t.Fatalf("container %s has no IPv4 address on network %s", id, network)
	return ""
}

// Logs returns a container's combined output, for failure messages.
func (e *Env) Logs(t testing.TB, id string) string {
	t.Helper()
	c, cancel := ctx()
	defer cancel()
	rc, err := e.Client.ContainerLogs(c, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return fmt.Sprintf("(logs of %s: %v)", id, err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		fmt.Fprintf(&out, "(logs of %s: %v)", id, err)
	}
	return out.String()
}

// Poll calls f every 20ms until it returns nil, and fails the test with f's
// last error if that does not happen within timeout.
func Poll(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	porticotest.Eventually(t, timeout, what, f)
}
