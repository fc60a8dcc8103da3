package dockertest

import (
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Forwarder proxies a unix socket to Docker's, byte for byte, and can be
// cut and restored: Docker "goes away" for whoever uses Host(). It can also
// hold back each request (Delay): Docker slows down.
type Forwarder struct {
	path, target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	delay time.Duration
}

// Delay holds back every later chunk sent to Docker (in practice, every
// request) by d: a daemon busy with other work, without touching the daemon.
func (f *Forwarder) Delay(d time.Duration) {
	f.mu.Lock()
	f.delay = d
	f.mu.Unlock()
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
	go func() { f.toDocker(d, c); d.Close() }()
	io.Copy(c, d)
	c.Close()
}

// toDocker copies a client's bytes to Docker, each chunk after the delay.
func (f *Forwarder) toDocker(d, c net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			f.mu.Lock()
			delay := f.delay
			f.mu.Unlock()
			if delay > 0 {
				<-time.After(delay)
			}
			if _, werr := d.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
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
