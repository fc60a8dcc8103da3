package supervise

import (
	"fmt"
	"strings"
	"sync"
)

// addrInUse extracts the address from nginx's
// "bind() to 127.0.0.1:80 failed (98: Address already in use)".
func addrInUse(line string) (string, bool) {
	_, rest, ok := strings.Cut(line, "bind() to ")
	if !ok || !strings.Contains(rest, "(98: Address already in use)") {
		return "", false
	}
	addr, _, ok := strings.Cut(rest, " failed")
	return addr, ok
}

// ListenError is nginx failing to start because another process holds one
// of its listen addresses. Retrying would not help: the supervisor gives up
// and the stage (and `portico run`) stops with this error.
type ListenError struct{ Addr string }

func (e *ListenError) Error() string {
	return fmt.Sprintf("nginx cannot listen on %s: address already in use by another process (stop it, or choose another --http-addr/--https-addr)", e.Addr)
}

// bindWatch remembers the first address-in-use line of one nginx run.
type bindWatch struct {
	mu   sync.Mutex
	addr string
}

func (b *bindWatch) see(line string) {
	if a, ok := addrInUse(line); ok {
		b.mu.Lock()
		if b.addr == "" {
			b.addr = a
		}
		b.mu.Unlock()
	}
}

func (b *bindWatch) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.addr == "" {
		return nil
	}
	return &ListenError{Addr: b.addr}
}
