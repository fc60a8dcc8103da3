package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"

	"github.com/portico/portico/internal/store"
)

// cmdEtcd runs the embedded etcd of `portico run` on its own, for a stack
// split by privilege (compose.yaml): the other stages reach it with
// --etcd-endpoints http://<name>:2379. It serves the unix socket in the
// data dir (for `portico status --data-dir` beside it) and the TCP
// listeners of --listen-client, which carry no auth or TLS: they belong on
// a network only the stages join (docs/container.md).
func cmdEtcd(ctx context.Context, args []string, e env, stderr io.Writer) error {
	c := newCommand("etcd", "Run the embedded etcd as its own process: the store of a stack whose stages run apart (compose.yaml). "+
		"It serves the unix socket <data-dir>/etcd.sock and the plain-http --listen-client addresses, without auth: keep those on a network only the stages join.", stderr)
	lo := addLog(c.fs)
	metricsAddr := addMetrics(c.fs)
	dataDir := addDataDir(c.fs, defaultDataDir)
	listen := newList().list(c.fs, "listen-client", "extra client listeners, http://host:port, comma separated (empty: only the unix socket in the data dir)")
	if err := c.parse(args, e); err != nil {
		return err
	}
	log, err := lo.logger(stderr)
	if err != nil {
		return err
	}
	c.logWarnings(log)
	urls, err := parseClientURLs(listen.vals)
	if err != nil {
		return usageError(err)
	}
	loose, err := store.PrepareDataDir(*dataDir)
	if err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	if loose != 0 {
		log.Warn("data dir was open to other users; tightened it", "dir", *dataDir, "was", fmt.Sprintf("%04o", loose), "now", "0700")
	}
	release, err := lockDataDir(*dataDir)
	if err != nil {
		return err
	}
	defer release()
	reg := newRegistry()
	emb, err := newEmbeddedEtcd(store.EmbeddedConfig{Dir: *dataDir, ClientURLs: urls}, reg, log)
	if err != nil {
		return err
	}
	defer emb.Close()
	metricsAt, err := serveMetrics(ctx, *metricsAddr, reg, log)
	if err != nil {
		return err
	}
	sock, err := store.EmbeddedEndpoint(*dataDir)
	if err != nil {
		return err
	}
	eps := []string{sock}
	for _, u := range urls {
		eps = append(eps, u.String())
	}
	if len(urls) > 0 {
		log.Warn("etcd serves plain http without auth: whoever reaches these addresses reads and writes the whole store; keep them on a network only Portico's stages join",
			"listen", strings.Join(eps[1:], ","))
	}
	log.Info("portico etcd started", "endpoints", strings.Join(eps, ","), "data_dir", absPath(*dataDir), "metrics", metricsAt)
	err = runStages(ctx, log, map[string]stage{"etcd": emb})
	log.Info("portico etcd stopped", "reason", stopReason(ctx, err))
	return err
}

// parseClientURLs checks --listen-client values: http://host:port with an
// IP (or empty host: all addresses) and nothing else. https would need
// server certificates the command does not manage; a name would be
// resolved once, silently.
func parseClientURLs(vals []string) ([]url.URL, error) {
	var out []url.URL
	for _, v := range vals {
		v = strings.TrimSpace(v)
		u, err := url.Parse(v)
		if err != nil {
			return nil, fmt.Errorf("--listen-client %q: %w", v, err)
		}
		if u.Scheme != "http" {
			return nil, fmt.Errorf("--listen-client %q: scheme must be http (unix:// is always served in the data dir)", v)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("--listen-client %q: give only http://host:port", v)
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil {
			return nil, fmt.Errorf("--listen-client %q: %w", v, err)
		}
		if port == "" {
			return nil, fmt.Errorf("--listen-client %q: no port", v)
		}
		if host != "" && net.ParseIP(host) == nil {
			return nil, fmt.Errorf("--listen-client %q: host must be an IP address (or empty for all)", v)
		}
		if host == "" {
			u.Host = net.JoinHostPort("0.0.0.0", port)
		}
		u.Path = ""
		out = append(out, *u)
	}
	return out, nil
}
