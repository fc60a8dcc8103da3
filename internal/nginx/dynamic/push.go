package dynamic

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portico/portico/internal/atomicfile"
)

// Control talks to nginx's control endpoint: a unix socket in a directory
// only Portico's user may enter, so no other local user and no network
// client can change what nginx serves.
type Control struct {
	socket string
	client *http.Client
}

// NewControl returns a client of the control endpoint at socket.
func NewControl(socket string) *Control {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:      2,
		IdleConnTimeout:   30 * time.Second,
		DisableKeepAlives: false,
	}
	return &Control{socket: socket, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// Close drops idle connections.
func (c *Control) Close() { c.client.CloseIdleConnections() }

// maxReply bounds what is read of a reply.
const maxReply = 4096

func (c *Control) do(ctx context.Context, method, path string, body []byte) (string, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://portico-control"+path, r)
	if err != nil {
		return "", err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("nginx control %s %s: %w", method, c.socket, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	text := strings.TrimSpace(string(b))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("nginx control %s %s: %s: %q", method, path, resp.Status, text)
	}
	return text, nil
}

// State returns the running nginx's boot id (new at every start and
// reload) and the version of the table it holds.
func (c *Control) State(ctx context.Context) (boot, version string, err error) {
	s, err := c.do(ctx, http.MethodGet, "/state", nil)
	if err != nil {
		return "", "", err
	}
	boot, version, _ = strings.Cut(s, "\t")
	if boot == "" {
		return "", "", fmt.Errorf("nginx control state %q: no boot id", s)
	}
	return boot, version, nil
}

// PutCert stores a certificate by id; nginx parses it first and refuses
// one it cannot use.
func (c *Control) PutCert(ctx context.Context, cert Cert) error {
	body := make([]byte, 0, len(cert.FullChain)+len(cert.Key)+1)
	body = append(append(append(body, cert.FullChain...), 0), cert.Key...)
	_, err := c.do(ctx, http.MethodPut, "/cert?id="+url.QueryEscape(cert.ID), body)
	return err
}

// PutRoutes replaces the route table (Table.Encode's bytes).
func (c *Control) PutRoutes(ctx context.Context, body []byte) error {
	_, err := c.do(ctx, http.MethodPut, "/routes", body)
	return err
}

// PutDelta applies a delta (Delta's bytes) to the route table. nginx
// refuses one whose base is not the table it holds (errStaleBase).
func (c *Control) PutDelta(ctx context.Context, body []byte) error {
	_, err := c.do(ctx, http.MethodPut, "/routes-delta", body)
	return err
}

// Pusher keeps a running nginx's dynamic state equal to the wanted one,
// level-triggered: each Push asks nginx what it holds and sends only what
// differs, then records the state in StateFile for nginx's next start.
//
// What differs is sent as a delta (Delta) when nginx holds the table this
// Pusher last sent, so a change costs its own size, not the table's; the
// whole table otherwise (a new nginx, a refused or failed delta, a table
// nginx holds that is not the last one sent). nginx applies a delta only
// to the table it was made from, so a lost or misapplied delta can never
// leave nginx serving a mix: the next Push sends the whole table.
type Pusher struct {
	Control *Control
	// StateFile is where the table and the certificates' files are listed
	// for nginx's start (mode 0600).
	StateFile string

	boot   string
	pushed map[string]bool // certificate ids the nginx of boot holds
	// sent is the table the nginx of boot holds, as last sent or found
	// (nil: unknown).
	sent   *Encoded
	onDisk []byte
	read   bool // onDisk was read from StateFile

	// deltas and fulls count the pushes of each kind; lastBytes is the
	// size of the last one sent (Counts).
	deltas, fulls, lastBytes atomic.Int64
}

// Counts returns the number of deltas and of whole tables pushed, and the
// size of the last push; safe to call while another goroutine pushes.
func (p *Pusher) Counts() (deltas, fulls, lastBytes int64) {
	return p.deltas.Load(), p.fulls.Load(), p.lastBytes.Load()
}

// Push makes nginx serve the table enc with certs. It reports whether
// nginx's table changed. On error nginx keeps what it had; the caller
// retries. stateErr is the state file's write failing, apart: nginx serves
// the push all the same, and the next Push writes the file again.
func (p *Pusher) Push(ctx context.Context, enc Encoded, certs []Cert) (changed bool, err, stateErr error) {
	changed, err = p.push(ctx, enc, certs)
	// The state file says what nginx should serve at its next start,
	// whether or not this push went through; written after the push, so
	// that its fsync does not delay the change. An unchanged file is not
	// rewritten, after a restart either: a full disk stops nothing that
	// needs no new bytes.
	if !p.read {
		p.onDisk, _ = os.ReadFile(p.StateFile)
		p.read = true
	}
	state, serr := StateFile(enc.Body, certs)
	if serr == nil && !bytes.Equal(state, p.onDisk) {
		if _, serr = atomicfile.WriteIfChanged(p.StateFile, state, 0o600); serr == nil {
			p.onDisk = state
		}
	}
	return changed, err, serr
}

func (p *Pusher) push(ctx context.Context, enc Encoded, certs []Cert) (bool, error) {
	boot, have, err := p.Control.State(ctx)
	if err != nil {
		return false, err
	}
	if boot != p.boot {
		// A new nginx (start or reload): it loaded the state file, whose
		// certificates it holds if its table is the one wanted now.
		p.boot, p.pushed, p.sent = boot, map[string]bool{}, nil
		if have == enc.Version {
			for _, c := range certs {
				p.pushed[c.ID] = true
			}
		}
	}
	if have == enc.Version {
		p.sent = &enc
		return false, nil
	}
	for _, c := range certs {
		if p.pushed[c.ID] {
			continue
		}
		if err := p.Control.PutCert(ctx, c); err != nil {
			return false, fmt.Errorf("certificate %s: %w", c.ID, err)
		}
		p.pushed[c.ID] = true
	}
	keep := make(map[string]bool, len(certs))
	for _, c := range certs {
		keep[c.ID] = p.pushed[c.ID]
	}
	if p.sent != nil && have == p.sent.Version {
		var drop []string
		for id := range p.pushed {
			if !keep[id] {
				drop = append(drop, id)
			}
		}
		body, _ := Delta(*p.sent, enc, drop)
		if err := p.Control.PutDelta(ctx, body); err == nil {
			p.sent, p.pushed = &enc, keep
			p.lastBytes.Store(int64(len(body)))
			p.deltas.Add(1)
			return true, nil
		}
		// Refused or failed: the whole table below, whatever nginx holds.
	}
	p.sent = nil
	if err := p.Control.PutRoutes(ctx, enc.Body); err != nil {
		return false, err
	}
	// nginx dropped the certificates the table does not name.
	p.sent, p.pushed = &enc, keep
	p.lastBytes.Store(int64(len(enc.Body)))
	p.fulls.Add(1)
	return true, nil
}

// Reset forgets what nginx holds, so the next Push checks everything.
func (p *Pusher) Reset() { p.boot, p.pushed, p.sent = "", nil, nil }

// PutACME replaces the pending http-01 challenges nginx answers
// (ACMEBody's bytes).
func (c *Control) PutACME(ctx context.Context, body []byte) error {
	_, err := c.do(ctx, http.MethodPut, "/acme", body)
	return err
}
