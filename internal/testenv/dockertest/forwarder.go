package dockertest

import (
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
)

// Forwarder proxies a unix socket to Docker's, byte for byte, and can be
// cut and restored: Docker "goes away" for whoever uses Host().
type Forwarder struct {
	path, target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

// NewForwarder listens on a socket in a temp dir, forwarding to the local
// Docker socket, until the test ends.
func NewForwarder(t testing.TB) *Forwarder {
	t.Helper()
	f := &Forwarder{path: filepath.Join(t.TempDir(), "docker.sock"), target: "/var/run/docker.sock"}
	f.Restore(t)
	t.Cleanup(f.Cut)
	return f
}

// Host is the forwarder's address in DOCKER_HOST form.
func (f *Forwarder) Host() string { return "unix://" + f.path }

// Restore listens again after Cut.
func (f *Forwarder) Restore(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.ln, f.conns = ln, map[net.Conn]bool{}
	f.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
}

func (f *Forwarder) track(cs ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil {
		return false
	}
	for _, c := range cs {
		f.conns[c] = true
	}
	return true
}

func (f *Forwarder) serve(c net.Conn) {
	d, err := net.Dial("unix", f.target)
	if err != nil {
		c.Close()
		return
	}
	if !f.track(c, d) {
		c.Close()
		d.Close()
		return
	}
	go func() { io.Copy(d, c); d.Close() }()
	io.Copy(c, d)
	c.Close()
}

// Cut stops listening and closes every proxied connection.
func (f *Forwarder) Cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		f.ln.Close()
		f.ln = nil
	}
	for c := range f.conns {
		c.Close()
	}
	f.conns = nil
}
