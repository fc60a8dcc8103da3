package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/traffic"
	"github.com/portico/portico/internal/ui"
)

// defaultUIAddr is where `portico ui` listens unless told otherwise;
// `portico run` serves the page only when --ui-addr is given.
const defaultUIAddr = "127.0.0.1:8099"

// uiOpts are the web page's flags.
type uiOpts struct {
	addr    *string
	token   *secretFlag
	network *string
	allowed *listFlag
	// node is the nginx stage's --node when the page runs beside it (run).
	node *string
	// hostExpiry is --host-expiry: the nginx stage's in run, its own in ui.
	hostExpiry *time.Duration
}

// addUI defines --ui-addr and --ui-token (--ui-token-file,
// PORTICO_UI_TOKEN). network and allowed are the routing flags the
// command already has (the page shows routes as the nginx stage builds
// them); nil defines them here.
func addUI(fs *flag.FlagSet, def string, network *string, allowed *listFlag) *uiOpts {
	o := &uiOpts{network: network, allowed: allowed}
	o.addr = fs.String("ui-addr", def, "serve the operators' web page at http://<addr>/ (empty: off). An address that is not loopback needs --ui-token-file (see docs/ui.md)")
	o.token = addSecret(fs, "ui-token", "token the web page asks for (required when --ui-addr is not loopback)")
	if o.network == nil {
		o.network = fs.String("network", "", "the proxy's Docker network, as given to the nginx stage")
	}
	if o.allowed == nil {
		o.allowed = addAllowedDomains(fs)
		// The page's own command (ui): it judges hosts itself.
		o.hostExpiry = addHostExpiry(fs)
	}
	return o
}

// check is the start-up rule, before anything starts: a non-loopback
// --ui-addr needs a token.
func (o *uiOpts) check() error {
	if *o.addr == "" {
		return nil
	}
	if err := ui.CheckAddr(*o.addr, o.token.Value()); err != nil {
		return usageError(fmt.Errorf("--ui-addr: %w", err))
	}
	return nil
}

// newUI builds the page's server, listening already; nil when --ui-addr
// is empty.
func newUI(o *uiOpts, so *storeOpts, cli *clientv3.Client, health func() *store.EmbeddedHealth, tr *traffic.Monitor, log *slog.Logger) (*ui.Server, error) {
	if *o.addr == "" {
		return nil, nil
	}
	ropts, err := routingOptions(*o.network, o.allowed)
	if err != nil {
		return nil, err
	}
	if o.node != nil {
		ropts.Node = *o.node
	}
	expiry := time.Duration(0)
	if o.hostExpiry != nil {
		expiry = hostExpiry(*o.hostExpiry)
	}
	cfg := ui.Config{
		Addr:       *o.addr,
		Token:      o.token.Value(),
		Keys:       so.keys(),
		Routing:    ropts,
		HostExpiry: expiry,
		Health:     health,
		Log:        log.With("stage", "ui"),
	}
	if tr != nil {
		cfg.Traffic = tr
	}
	return ui.New(cfg, cli)
}

// cmdUI serves the page alone, against an external etcd or the embedded
// one of a running `portico run` (--data-dir).
func cmdUI(ctx context.Context, args []string, e env, stderr io.Writer) error {
	c := newCommand("ui", "Serve the operators' web page: routes, containers, certificates, nginx instances and problems, updated live.", stderr)
	so := addStore(c.fs)
	lo := addLog(c.fs)
	dataDir := addDataDir(c.fs, defaultDataDir)
	uo := addUI(c.fs, defaultUIAddr, nil, nil)
	if err := c.parse(args, e); err != nil {
		return err
	}
	if *uo.addr == "" {
		return usageError(errors.New("--ui-addr is empty: give the address to serve the page on"))
	}
	if err := uo.check(); err != nil {
		return err
	}
	return runOne(ctx, c, so, lo, "", *dataDir, stderr, "ui", so.keys().CertsWanted(), func(cli *clientv3.Client, _ *prometheus.Registry, log *slog.Logger) (stage, error) {
		return newUI(uo, so, cli, nil, nil, log)
	})
}
