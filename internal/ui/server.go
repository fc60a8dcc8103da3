// Package ui serves Portico's web page for operators: one page that shows
// the status report (routes, containers by Docker host, certificates,
// nginx instances, problems) and updates live over server-sent events.
// Every asset is embedded; the page loads nothing from elsewhere.
package ui

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico/portico/internal/hosts"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/status"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/traffic"
)

//go:embed assets
var assets embed.FS

// Defaults for Config's zero values.
const (
	DefaultMaxClients = 32
	// DefaultMaxClientsPerAddr bounds the streams of one client address
	// (an IPv6 /64): a browser with a few tabs stays well below it.
	DefaultMaxClientsPerAddr = 4
	DefaultMaxSnapshot       = 4 << 20
	DefaultDebounce          = 250 * time.Millisecond
	DefaultHeartbeat         = 25 * time.Second
	// writeTimeout bounds one write to an event stream.
	writeTimeout = 30 * time.Second
)

// Config is the page's server.
type Config struct {
	// Addr is host:port to listen on; CheckAddr decides whether it needs
	// a Token.
	Addr string
	// Token, when set, is required on every request (see authorize).
	Token   string
	Keys    store.Keys
	Routing routing.Options
	// HostExpiry is --host-expiry (internal/hosts): 0 means
	// hosts.DefaultExpiry, negative never.
	HostExpiry time.Duration
	// MaxClients bounds the live (SSE) connections; more get 503.
	MaxClients int
	// MaxClientsPerAddr bounds the live connections of one client address
	// (IPv4 address, IPv6 /64); more get 503.
	MaxClientsPerAddr int
	// MaxSnapshot bounds one snapshot's JSON in bytes (see Encode).
	MaxSnapshot int
	// Debounce is how long a change waits for more before a snapshot.
	Debounce time.Duration
	// Heartbeat is how often an idle event stream gets a comment line.
	Heartbeat time.Duration
	// Health, when set, reports the embedded etcd of `portico run`; the
	// page shows its failure. Call Refresh when it changes.
	Health func() *store.EmbeddedHealth
	// Traffic, when set, gives the per-site traffic charts (the nginx
	// stage's traffic.Monitor, in the same process); nil: the page says
	// they are not available here.
	Traffic Charter
	Log     *slog.Logger
}

// Charter gives the traffic history the page charts.
type Charter interface {
	Charts() traffic.Charts
}

// Server serves the page. New listens; Run serves until its context ends.
type Server struct {
	cfg     Config
	l       net.Listener
	mirror  *store.Mirror
	notify  chan struct{}
	clients atomic.Int64

	// perAddr counts the open event streams by client address (streamKey).
	perAddrMu sync.Mutex
	perAddr   map[netip.Addr]int

	mu   sync.Mutex
	snap []byte
	// changed is closed and replaced on every new snapshot.
	changed chan struct{}
}

// New checks cfg, listens on cfg.Addr and prepares a mirror of the store
// through cli.
func New(cfg Config, cli store.Watcher) (*Server, error) {
	if err := CheckAddr(cfg.Addr, cfg.Token); err != nil {
		return nil, fmt.Errorf("--ui-addr: %w", err)
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.MaxClientsPerAddr <= 0 {
		cfg.MaxClientsPerAddr = DefaultMaxClientsPerAddr
	}
	if cfg.MaxSnapshot <= 0 {
		cfg.MaxSnapshot = DefaultMaxSnapshot
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("--ui-addr %q: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, l: l, notify: make(chan struct{}, 1), changed: make(chan struct{}), perAddr: map[netip.Addr]int{}}
	s.mirror = store.NewMirror(cli, cfg.Keys.Prefix()+"/", s.notify, cfg.Log.With("component", "ui"))
	s.publish(time.Now())
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.l.Addr().String() }

// Run serves the page until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.mirror.Run(ctx) }()
	go func() { defer wg.Done(); s.debounce(ctx) }()
	s.cfg.Log.Info("serving the web page", "addr", s.Addr(), "token", s.cfg.Token != "")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.l) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		cancel()
	}
	srv.Close()
	wg.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("ui: %w", err)
	}
	return ctx.Err()
}

// debounce turns the mirror's notifications into snapshots: the first
// change starts a timer, the changes during it ride along.
func (s *Server) debounce(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.notify:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.Debounce):
		}
		select { // changes during the wait are in this snapshot
		case <-s.notify:
		default:
		}
		s.publish(time.Now())
	}
}

// publish builds a snapshot from the mirror and wakes the event streams.
func (s *Server) publish(now time.Time) {
	entries, rev, synced := s.mirror.Snapshot()
	expiry := s.cfg.HostExpiry
	if expiry == 0 {
		expiry = hosts.DefaultExpiry
	}
	rep := status.GatherExpiry(entries, s.cfg.Keys, s.cfg.Routing, now, expiry)
	var health *store.EmbeddedHealth
	if s.cfg.Health != nil {
		health = s.cfg.Health()
	}
	b, err := Encode(rep, rev, synced, health, now, s.cfg.MaxSnapshot)
	if err != nil {
		s.cfg.Log.Error("ui snapshot", "err", err, "revision", rev)
		return
	}
	s.mu.Lock()
	s.snap = b
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Refresh makes a new snapshot soon, for a change the store does not
// announce (the embedded etcd's health).
func (s *Server) Refresh() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *Server) current() ([]byte, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap, s.changed
}

// Handler is the page's HTTP handler, with authorization and headers.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	mux.Handle("GET /{$}", files)
	mux.Handle("GET /app.js", files)
	mux.Handle("GET /app.css", files)
	mux.Handle("GET /uPlot.iife.min.js", files)
	mux.Handle("GET /uPlot.min.css", files)
	mux.HandleFunc("GET /api/traffic", s.serveTraffic)
	mux.HandleFunc("GET /api/status", s.serveStatus)
	mux.HandleFunc("GET /events", s.serveEvents)
	return s.guard(mux)
}

// guard sets the security headers and checks the token.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		fromQuery, err := authorize(r, s.cfg.Token)
		if err != nil {
			s.cfg.Log.Debug("ui request refused", "remote", r.RemoteAddr, "path", r.URL.Path, "err", err)
			if s.cfg.Token == "" {
				http.Error(w, "forbidden: open the page by a loopback address", http.StatusForbidden)
				return
			}
			h.Set("WWW-Authenticate", `Bearer realm="portico"`)
			http.Error(w, "unauthorized: open the page with ?token=<token> once, or send Authorization: Bearer <token>", http.StatusUnauthorized)
			return
		}
		if fromQuery {
			http.SetCookie(w, &http.Cookie{Name: CookieName, Value: cookieValue(s.cfg.Token), Path: "/",
				HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
			http.Redirect(w, r, withoutToken(r.URL), http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) serveStatus(w http.ResponseWriter, _ *http.Request) {
	b, _ := s.current()
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// trafficReply is /api/traffic: the charts, or why there are none.
type trafficReply struct {
	Available bool   `json:"available"`
	Why       string `json:"why,omitempty"`
	*traffic.Charts
}

// serveTraffic answers the page's poll for the traffic charts.
func (s *Server) serveTraffic(w http.ResponseWriter, _ *http.Request) {
	rep := trafficReply{Why: "per-site traffic is counted by the nginx stage: open the page that `portico run --ui-addr` serves, with nginx's Lua module installed (docs/metrics.md)"}
	if s.cfg.Traffic != nil {
		c := s.cfg.Traffic.Charts()
		rep = trafficReply{Available: true, Charts: &c}
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(rep); err != nil {
		s.cfg.Log.Debug("ui traffic reply", "err", err)
	}
}

// streamKey is the client address a stream counts against: the IPv4
// address, or the IPv6 /64 (one host usually has a whole /64).
func streamKey(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// acquire takes a stream slot for the client at remoteAddr, or says why
// not: the client's address holds MaxClientsPerAddr, or all hold
// MaxClients. Only authorized requests get here (guard runs first), so with
// a token nobody without it takes a slot.
func (s *Server) acquire(remoteAddr string) (release func(), refused string) {
	key := streamKey(remoteAddr)
	s.perAddrMu.Lock()
	defer s.perAddrMu.Unlock()
	if s.perAddr[key] >= s.cfg.MaxClientsPerAddr {
		return nil, fmt.Sprintf("too many live clients from %s (at most %d)", key, s.cfg.MaxClientsPerAddr)
	}
	if s.clients.Load() >= int64(s.cfg.MaxClients) {
		return nil, fmt.Sprintf("too many live clients (at most %d)", s.cfg.MaxClients)
	}
	s.perAddr[key]++
	s.clients.Add(1)
	return func() {
		s.perAddrMu.Lock()
		defer s.perAddrMu.Unlock()
		if s.perAddr[key]--; s.perAddr[key] <= 0 {
			delete(s.perAddr, key)
		}
		s.clients.Add(-1)
	}, ""
}

// serveEvents streams a snapshot now and after every change, to at most
// MaxClients clients at once and MaxClientsPerAddr per client address.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	release, refused := s.acquire(r.RemoteAddr)
	if release == nil {
		w.Header().Set("Retry-After", "10")
		http.Error(w, refused, http.StatusServiceUnavailable)
		return
	}
	defer release()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	beat := time.NewTicker(s.cfg.Heartbeat)
	defer beat.Stop()
	var sent []byte
	for {
		b, changed := s.current()
		// A client that stops reading loses its slot instead of holding
		// it: each write has a deadline.
		rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if b != nil && !sameSlice(b, sent) {
			if _, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", b); err != nil {
				return
			}
			sent = b
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		case <-beat.C:
			rc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
		}
	}
}

// sameSlice says whether a and b are the same snapshot (not just equal).
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// Clients is the number of open event streams.
func (s *Server) Clients() int { return int(s.clients.Load()) }
