package dockertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// This file gives a test more than one "machine" on this one: test hosts
// in network namespaces the test creates, joined on a private LAN, and a
// second Docker daemon on one of them (multi-host tests, issue 17).
//
// The LAN is a bridge inside a network namespace of its own, not in the
// root namespace: the shared daemon's iptables set the root namespace's
// FORWARD policy to DROP (and br_netfilter sends bridged frames through
// it), so hosts joined there could reach the root namespace but not each
// other, short of rules in the shared daemon's chains. In its own
// namespace the bridge forwards between every host and the root namespace
// with no rule anywhere.

// LAN is a private layer-2 network between the root namespace and test
// hosts: 10.X.Y.0/28, picked at random among prefixes that overlap no
// route or address of the machine. It is deleted when the test ends.
type LAN struct {
	// Prefix is the LAN's subnet.
	Prefix netip.Prefix
	// Root is the root namespace's address on the LAN: where test hosts
	// reach processes of the test binary's own namespace (bind there).
	Root netip.Addr

	id      string
	ns      string // the namespace holding the bridge
	rootDev string // the root namespace's end of its veth pair

	mu    sync.Mutex
	hosts int
}

// NetHost is a test host: a network namespace with one address on a LAN
// (interface eth0) and its own loopback.
type NetHost struct {
	// NS is the namespace's name (ip netns).
	NS string
	// Addr is the host's address on the LAN.
	Addr netip.Addr
}

// Command runs name in the host's network namespace (`ip netns exec`,
// which also mounts the namespace's own /sys).
func (h *NetHost) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// NewLAN creates the LAN and joins the root namespace to it. Cleanup
// deletes the namespaces and links, even when the test failed.
func NewLAN(t testing.TB) *LAN {
	t.Helper()
	id := randomID()[:8]
	l := &LAN{id: id, ns: "mh-" + id + "-lan", rootDev: "mh" + id}
	prefix, err := freePrefix()
	if err != nil {
		t.Fatal(err)
	}
	l.Prefix = prefix
	l.Root = prefix.Addr().Next()
	t.Cleanup(func() { l.cleanup(t) })
	steps := [][]string{
		{"netns", "add", l.ns},
		{"-n", l.ns, "link", "set", "lo", "up"},
		{"-n", l.ns, "link", "add", "br0", "type", "bridge"},
		{"-n", l.ns, "link", "set", "br0", "up"},
		{"link", "add", l.rootDev, "type", "veth", "peer", "name", "p0", "netns", l.ns},
		{"-n", l.ns, "link", "set", "dev", "p0", "master", "br0"},
		{"-n", l.ns, "link", "set", "dev", "p0", "up"},
		{"addr", "add", netip.PrefixFrom(l.Root, prefix.Bits()).String(), "dev", l.rootDev},
		{"link", "set", "dev", l.rootDev, "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			t.Fatalf("LAN %s: %v", prefix, err)
		}
	}
	return l
}

// AddHost creates a test host on the LAN: a network namespace named
// mh-<lan id>-<name> with the LAN's next address on eth0, loopback up and
// a default route through the root namespace's address (which forwards
// nothing: the LAN is the host's whole world).
func (l *LAN) AddHost(t testing.TB, name string) *NetHost {
	t.Helper()
	l.mu.Lock()
	l.hosts++
	n := l.hosts
	l.mu.Unlock()
	addr := l.Root
	for range n {
		addr = addr.Next()
	}
	if !l.Prefix.Contains(addr) || addr == lastAddr(l.Prefix) {
		t.Fatalf("LAN %s is full", l.Prefix)
	}
	h := &NetHost{NS: "mh-" + l.id + "-" + name, Addr: addr}
	port := "p" + strconv.Itoa(n)
	dev := "mh" + l.id + "h" + strconv.Itoa(n) // the root-side name while it is created
	steps := [][]string{
		{"netns", "add", h.NS},
		{"-n", h.NS, "link", "set", "lo", "up"},
		{"link", "add", dev, "type", "veth", "peer", "name", port, "netns", l.ns},
		{"link", "set", "dev", dev, "netns", h.NS},
		{"-n", h.NS, "link", "set", "dev", dev, "name", "eth0"},
		{"-n", l.ns, "link", "set", "dev", port, "master", "br0"},
		{"-n", l.ns, "link", "set", "dev", port, "up"},
		{"-n", h.NS, "addr", "add", netip.PrefixFrom(addr, l.Prefix.Bits()).String(), "dev", "eth0"},
		{"-n", h.NS, "link", "set", "dev", "eth0", "up"},
		{"-n", h.NS, "route", "add", "default", "via", l.Root.String()},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			t.Fatalf("test host %s on LAN %s: %v", name, l.Prefix, err)
		}
	}
	t.Cleanup(func() {
		if err := ip("netns", "del", h.NS); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return h
}

func (l *LAN) cleanup(t testing.TB) {
	// Deleting a namespace destroys its veth ends, and with them their
	// peers, but the kernel does that in the background: delete the root
	// end too, so that the prefix is free when the test returns.
	if err := ip("link", "del", l.rootDev); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		t.Errorf("cleanup: %v", err)
	}
	if err := ip("netns", "del", l.ns); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// freePrefix picks a random 10.X.Y.Z/28 that overlaps no IPv4 route (any
// table) or address of the root namespace.
func freePrefix() (netip.Prefix, error) {
	out, err := exec.Command("ip", "-4", "-o", "route", "show", "table", "all").Output()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("ip route: %w", err)
	}
	addrs, err := exec.Command("ip", "-4", "-o", "addr", "show").Output()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("ip addr: %w", err)
	}
	used := usedPrefixes(string(out), string(addrs))
	for range 100 {
		var b [3]byte
		rand.Read(b[:])
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, b[0], b[1], b[2] &^ 0x0f}), 28)
		if !overlapsAny(p, used) {
			return p, nil
		}
	}
	return netip.Prefix{}, errors.New("no free 10.0.0.0/8 /28 for a test LAN")
}

// usedPrefixes reads the destinations of `ip -o route` lines ("default"
// is not one: it overlaps everything by design) and the prefixes of `ip -o
// addr` lines.
func usedPrefixes(routes, addrs string) []netip.Prefix {
	var used []netip.Prefix
	add := func(s string) {
		if !strings.Contains(s, "/") {
			s += "/32"
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			used = append(used, p.Masked())
		}
	}
	for _, line := range strings.Split(routes, "\n") {
		f := strings.Fields(line)
		// "broadcast 10.0.0.255 dev ..." and "local ..." in other tables.
		if len(f) > 1 && (f[0] == "local" || f[0] == "broadcast" || f[0] == "unicast" || f[0] == "blackhole" || f[0] == "unreachable" || f[0] == "prohibit") {
			f = f[1:]
		}
		if len(f) > 0 && f[0] != "default" {
			add(f[0])
		}
	}
	for _, line := range strings.Split(addrs, "\n") {
		f := strings.Fields(line)
		for i := range f {
			if f[i] == "inet" && i+1 < len(f) {
				add(f[i+1])
			}
		}
	}
	return used
}

func overlapsAny(p netip.Prefix, used []netip.Prefix) bool {
	for _, u := range used {
		if p.Overlaps(u) {
			return true
		}
	}
	return false
}

// Daemon is a second Docker daemon, started by the test on a test host:
// its own socket, data root, exec root, pid file and managed containerd in
// a temp dir, in the host's network namespace, so that its bridge and
// iptables rules never touch the shared daemon's. It runs with
// --live-restore, as a production host would: stopping the daemon leaves
// its containers running (a daemon crash or upgrade).
type Daemon struct {
	// Host is the test host it runs on.
	Host *NetHost
	// Socket is the daemon's address in DOCKER_HOST form.
	Socket string
	// Client talks to it.
	Client *client.Client

	dir    string
	cgroup string // --cgroup-parent: its containers' cgroups, for cleanup

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *lockedLog
}

type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 256<<10 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StartDaemon starts dockerd on h and waits until it answers. Cleanup,
// even when the test failed: every container of the daemon is removed
// (it is the test's own daemon: all of them are the test's), the daemon is
// stopped, whatever it left running (containers kept by live-restore, shims,
// containerd) is killed, and its dir is removed.
func StartDaemon(t testing.TB, h *NetHost) *Daemon {
	t.Helper()
	// Short: the containerd socket lives under it (unix socket paths are
	// limited to 108 bytes).
	dir, err := os.MkdirTemp("", "mhd-")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Host: h, dir: dir, Socket: "unix://" + filepath.Join(dir, "docker.sock"),
		cgroup: "mhd-" + filepath.Base(dir)[len("mhd-"):], log: &lockedLog{}}
	t.Cleanup(func() { d.cleanup(t) })
	for _, sub := range []string{"data", "exec", "cgroup"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// An empty config file: the machine's /etc/docker/daemon.json is the
	// shared daemon's (its data root, its storage driver).
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cli, err := client.New(client.WithHost(d.Socket))
	if err != nil {
		t.Fatalf("docker client for %s: %v", d.Socket, err)
	}
	d.Client = cli
	d.Start(t)
	return d
}

// Start starts the daemon (again, after Stop: live-restore adopts the
// containers it left running) and waits until it answers, within 60 s.
func (d *Daemon) Start(t testing.TB) {
	t.Helper()
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
}

func (d *Daemon) start() error {
	if d.Running() {
		return errors.New("dockerd on " + d.Host.NS + " already runs")
	}
	cg := filepath.Join(d.dir, "cgroup")
	// `ip netns exec` would mount the namespace's own /sys, which hides
	// /sys/fs/cgroup and dockerd then refuses to start ("Devices cgroup
	// isn't mounted"). So: enter the network namespace, unshare the mount
	// namespace (slave: nothing mounted here reaches the machine's),
	// keep the cgroup mounts aside, mount the namespace's /sys, put the
	// cgroup mounts back, exec dockerd.
	script := `mount --rbind /sys/fs/cgroup "$1" && mount -t sysfs sysfs /sys && mount --rbind "$1" /sys/fs/cgroup && shift && exec "$@"`
	args := []string{"--net=/run/netns/" + d.Host.NS, "unshare", "--mount", "--propagation", "slave",
		"sh", "-c", script, "sh", cg,
		"dockerd", "--config-file", filepath.Join(d.dir, "daemon.json"),
		"--host", d.Socket, "--data-root", filepath.Join(d.dir, "data"), "--exec-root", filepath.Join(d.dir, "exec"),
		"--pidfile", filepath.Join(d.dir, "docker.pid"),
		// vfs: no overlay mounts to leak; the test images are one binary.
		"--storage-driver", "vfs",
		"--live-restore", "--userland-proxy=false", "--cgroup-parent", d.cgroup, "--log-level", "warn"}
	cmd := exec.Command("nsenter", args...)
	cmd.Stdout, cmd.Stderr = d.log, d.log
	// dockerd stops with its test binary; its containers do not
	// (live-restore): cleanup kills them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dockerd on %s: %w", d.Host.NS, err)
	}
	done := make(chan struct{})
	d.mu.Lock()
	d.cmd, d.done = cmd, done
	d.mu.Unlock()
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := d.Client.Ping(c, client.PingOptions{NegotiateAPIVersion: true})
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("dockerd on %s exited: %s\n%s", d.Host.NS, cmd.ProcessState, d.log.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dockerd on %s does not answer after 60s: %v\n%s", d.Host.NS, err, d.log.String())
		}
		<-time.After(50 * time.Millisecond)
	}
}

// Running reports whether dockerd runs.
func (d *Daemon) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// Stop stops dockerd as systemd would (SIGTERM; SIGKILL after 30 s) and
// returns once it is gone. Its containers keep running (live-restore).
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
}

func (d *Daemon) stop() error {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("dockerd on %s did not stop within 30s of SIGTERM (killed)", d.Host.NS)
	}
}

// Log is what dockerd wrote so far.
func (d *Daemon) Log() string { return d.log.String() }

// Env is an Env on this daemon with the given run id (that of the test's
// Env on the shared daemon, so that one --label-filter selects the test's
// containers on both). Its objects are removed by the daemon's cleanup.
func (d *Daemon) Env(runID string) *Env { return &Env{Client: d.Client, RunID: runID} }

// LoadImages copies images from another daemon (`docker save | docker
// load`): no registry is reachable, and the test images are built on the
// shared daemon (Env.Image).
func (d *Daemon) LoadImages(t testing.TB, from *client.Client, refs ...string) {
	t.Helper()
	c, cancel := ctx()
	defer cancel()
	saved, err := from.ImageSave(c, refs)
	if err != nil {
		t.Fatalf("save images %v: %v", refs, err)
	}
	defer saved.Close()
	res, err := d.Client.ImageLoad(c, saved, client.ImageLoadWithQuiet(true))
	if err != nil {
		t.Fatalf("load images %v into dockerd on %s: %v", refs, d.Host.NS, err)
	}
	out, err := io.ReadAll(res)
	res.Close()
	if err != nil {
		t.Fatalf("load images %v into dockerd on %s: %v", refs, d.Host.NS, err)
	}
	if bytes.Contains(out, []byte(`"error"`)) {
		t.Fatalf("load images %v into dockerd on %s: %s", refs, d.Host.NS, out)
	}
}

func (d *Daemon) cleanup(t testing.TB) {
	if d.Running() {
		c, cancel := ctx()
		cs, err := d.Client.ContainerList(c, client.ContainerListOptions{All: true})
		if err != nil {
			t.Errorf("cleanup: list containers of dockerd on %s: %v", d.Host.NS, err)
		}
		for _, ct := range cs.Items {
			if _, err := d.Client.ContainerRemove(c, ct.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				t.Errorf("cleanup: remove container %s: %v", ct.ID, err)
			}
		}
		cancel()
	}
	if err := d.stop(); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	if d.Client != nil {
		d.Client.Close()
	}
	// What live-restore kept (or a killed daemon left): the containers'
	// processes, in the cgroups under --cgroup-parent, and the shims and
	// containerd, which name the daemon's dir in their command lines.
	if err := killLeftovers(d.dir, d.cgroup); err != nil {
		t.Errorf("cleanup of dockerd on %s: %v", d.Host.NS, err)
	}
	if err := os.RemoveAll(d.dir); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	if t.Failed() {
		t.Logf("dockerd on %s log:\n%s", d.Host.NS, d.log.String())
	}
}

// killLeftovers kills the processes in the cgroups named cgroup (under
// every cgroup v1 controller, or the v2 tree) and those whose command line
// names dir, waits until they are gone and removes the cgroups.
func killLeftovers(dir, cgroup string) error {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + cgroup)
	if fi, err := os.Stat("/sys/fs/cgroup/" + cgroup); err == nil && fi.IsDir() {
		roots = append(roots, "/sys/fs/cgroup/"+cgroup)
	}
	pids := func() map[int]bool {
		found := map[int]bool{}
		for _, r := range roots {
			filepath.WalkDir(r, func(p string, e os.DirEntry, err error) error {
				if err != nil || e.IsDir() || e.Name() != "cgroup.procs" {
					return nil
				}
				b, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil {
						found[pid] = true
					}
				}
				return nil
			})
		}
		procs, _ := os.ReadDir("/proc")
		for _, p := range procs {
			pid, err := strconv.Atoi(p.Name())
			if err != nil {
				continue
			}
			if b, err := os.ReadFile("/proc/" + p.Name() + "/cmdline"); err == nil && bytes.Contains(b, []byte(dir+"/")) {
				found[pid] = true
			}
		}
		return found
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		left := pids()
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still run 15s after SIGKILL", left)
		}
		for pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		<-time.After(50 * time.Millisecond)
	}
	var errs []error
	for _, r := range roots {
		// Children first: a cgroup with sub-cgroups cannot be removed.
		var dirs []string
		filepath.WalkDir(r, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}
