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
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Attempt is one way in and what came of it.
type Attempt struct {
	Target string `json:"target"`
	Action string `json:"action"` // read, write, connect, readfile
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var endpoints, files list
	fs := flag.NewFlagSet("storeprobe", flag.ExitOnError)
	fs.Var(&endpoints, "endpoint", "etcd endpoint to try (host:port or unix:///path); repeatable")
	fs.Var(&files, "file", "file to try to read; repeatable")
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
