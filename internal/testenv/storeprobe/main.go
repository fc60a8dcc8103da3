// Command storeprobe tries every way into a Portico store it is told of and
// reports, as JSON on stdout, what it could read and write. The access e2e
// test runs it as an unprivileged user (nobody) against a running
// `portico run`, and once as the owner to show the probe itself works.
//
//	storeprobe --key /portico/certs/localca --put-key /portico/containers/x/y \
//	    --endpoint 127.0.0.1:2379 --endpoint unix:///data/etcd.sock --file /data/etcd-endpoint
//
// For each --endpoint it opens an etcd client (plain, no credentials) and
// tries to read --key and to write --put-key; for each --file it tries to
// read the file; for each unix socket path it also tries a raw connect.
//
// For each --pid (a process of Portico's tree: portico, nginx's master and
// workers) it tries what a process of the same uid could do to a worker
// that holds private keys: read /proc/<pid>/environ and maps, open
// /proc/<pid>/mem and read its mappings (counting the PEM private keys it
// finds, at most 8 MB a mapping), send signal 0, and stop it with SIGSTOP
// (resumed at once with SIGCONT).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Attempt is one way in and what came of it.
type Attempt struct {
	Target string `json:"target"`
	Action string `json:"action"` // read, write, connect, readfile, readenviron, readmaps, readmem, signal0, stop
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var endpoints, files, pids list
	fs := flag.NewFlagSet("storeprobe", flag.ExitOnError)
	fs.Var(&endpoints, "endpoint", "etcd endpoint to try (host:port or unix:///path); repeatable")
	fs.Var(&files, "file", "file to try to read; repeatable")
	fs.Var(&pids, "pid", "process whose memory and signals to try; repeatable")
	key := fs.String("key", "", "key to read")
	putKey := fs.String("put-key", "", "key to write")
	fs.Parse(os.Args[1:])

	var out []Attempt
	for _, ep := range endpoints {
		if p, ok := strings.CutPrefix(ep, "unix://"); ok {
			out = append(out, connectUnix(p))
		}
		out = append(out, tryEtcd(ep, *key, *putKey)...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		a := Attempt{Target: f, Action: "readfile", OK: err == nil}
		if err != nil {
			a.Detail = err.Error()
		} else {
			a.Detail = fmt.Sprintf("%d bytes", len(b))
		}
		out = append(out, a)
	}
	for _, p := range pids {
		pid, err := strconv.Atoi(p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "--pid %q: %v\n", p, err)
			os.Exit(2)
		}
		out = append(out, tryProcess(pid)...)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func connectUnix(path string) Attempt {
	a := Attempt{Target: "unix://" + path, Action: "connect"}
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		a.Detail = err.Error()
		return a
	}
	c.Close()
	a.OK = true
	return a
}

func tryEtcd(ep, key, putKey string) []Attempt {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return []Attempt{{Target: ep, Action: "read", Detail: err.Error()}, {Target: ep, Action: "write", Detail: err.Error()}}
	}
	defer cli.Close()
	var out []Attempt
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	r := Attempt{Target: ep, Action: "read"}
	if resp, err := cli.Get(ctx, key); err != nil {
		r.Detail = err.Error()
	} else if len(resp.Kvs) > 0 {
		r.OK, r.Detail = true, fmt.Sprintf("%s: %d bytes", key, len(resp.Kvs[0].Value))
	} else {
		// The server answered: it would have shown the key had it existed.
		r.OK, r.Detail = true, key+": answered, key absent"
	}
	out = append(out, r)
	w := Attempt{Target: ep, Action: "write"}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	if _, err := cli.Put(ctx2, putKey, `{"id":"probe","host":"probe"}`); err != nil {
		w.Detail = err.Error()
	} else {
		w.OK, w.Detail = true, "wrote "+putKey
	}
	return append(out, w)
}

var pemKey = regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)

// maxScan bounds what is read of one mapping, and of one process.
const (
	maxScan     = 8 << 20
	maxScanProc = 256 << 20
)

func tryProcess(pid int) []Attempt {
	target := fmt.Sprintf("pid %d", pid)
	var out []Attempt
	for _, f := range []string{"environ", "maps"} {
		a := Attempt{Target: target, Action: "read" + f}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
		if err != nil {
			a.Detail = err.Error()
		} else {
			a.OK, a.Detail = true, fmt.Sprintf("%d bytes", len(b))
		}
		out = append(out, a)
	}
	out = append(out, readMem(pid))
	a := Attempt{Target: target, Action: "signal0"}
	if err := syscall.Kill(pid, 0); err != nil {
		a.Detail = err.Error()
	} else {
		a.OK, a.Detail = true, "signal 0 delivered"
	}
	out = append(out, a)
	a = Attempt{Target: target, Action: "stop"}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		a.Detail = err.Error()
	} else {
		a.OK, a.Detail = true, "stopped (SIGSTOP), then resumed (SIGCONT)"
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			a.Detail += ": SIGCONT failed: " + err.Error()
		}
	}
	return append(out, a)
}

// readMem opens /proc/<pid>/mem and reads the readable mappings its maps
// list, counting PEM private keys.
func readMem(pid int) Attempt {
	a := Attempt{Target: fmt.Sprintf("pid %d", pid), Action: "readmem"}
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		a.Detail = err.Error()
		return a
	}
	defer mem.Close()
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		a.Detail = "opened mem, but maps: " + err.Error()
		return a
	}
	var read, keys int
	var lastErr error
	for _, line := range strings.Split(string(maps), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[1][0] != 'r' || read >= maxScanProc || (len(f) >= 6 && f[5] == "[vvar]") {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil || end <= start {
			continue
		}
		n := min(end-start, maxScan, uint64(maxScanProc-read))
		buf := make([]byte, n)
		m, err := mem.ReadAt(buf, int64(start))
		if m == 0 && err != nil {
			lastErr = err
			continue
		}
		read += m
		keys += len(pemKey.FindAllIndex(buf[:m], -1))
	}
	if read == 0 {
		a.Detail = fmt.Sprintf("opened mem, read nothing: %v", lastErr)
		return a
	}
	a.OK, a.Detail = true, fmt.Sprintf("read %d bytes, %d PEM private keys", read, keys)
	return a
}
