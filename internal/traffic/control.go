package traffic

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Control reads the counters from nginx's control socket (a unix socket
// in a directory only Portico's user may enter).
type Control struct {
	socket string
	client *http.Client
}

// NewControl returns a reader of the counters nginx serves at socket.
func NewControl(socket string) *Control {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:    1,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Control{socket: socket, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// Snapshot reads nginx's counters.
func (c *Control) Snapshot(ctx context.Context) (Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://portico-control/traffic", nil)
	if err != nil {
		return Snapshot{}, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return Snapshot{}, fmt.Errorf("nginx traffic counters %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return Snapshot{}, fmt.Errorf("nginx traffic counters %s: %s: %q", c.socket, resp.Status, strings.TrimSpace(string(b)))
	}
	return Parse(resp.Body)
}

// Forget deletes the counters of every site but keep's (and Unmatched's).
func (c *Control) Forget(ctx context.Context, keep []string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://portico-control/traffic/forget",
		strings.NewReader(strings.Join(keep, "\n")))
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("nginx traffic forget %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("nginx traffic forget %s: %s", c.socket, resp.Status)
	}
	return nil
}

// Close drops idle connections.
func (c *Control) Close() { c.client.CloseIdleConnections() }
