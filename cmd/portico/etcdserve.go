package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/portico/portico/internal/store"
)

// cmdEtcd runs the embedded etcd of `portico run` on its own, for a stack
// split by privilege (compose.yaml): the other stages reach it with
// --etcd-endpoints unix:///run/portico/etcd.sock, a socket in a volume
// only they mount. It serves the unix socket in the data dir (for
// `portico status --data-dir` beside it) and the listeners of
// --listen-client (docs/container.md).
func cmdEtcd(ctx context.Context, args []string, e env, stderr io.Writer) error {
	c := newCommand("etcd", "Run the embedded etcd as its own process: the store of a stack whose stages run apart (compose.yaml). "+
		"It serves the unix socket <data-dir>/etcd.sock and the --listen-client sockets (unix://, in a 0700 dir shared with the stages) or plain-http addresses (no auth: anyone who reaches them owns the store).", stderr)
	lo := addLog(c.fs)
	metricsAddr := addMetrics(c.fs)
	dataDir := addDataDir(c.fs, defaultDataDir)
	listen := newList().list(c.fs, "listen-client", "extra client listeners, comma separated: unix:///<dir>/<name>.sock (the dir is made 0700, the socket 0600) or http://<ip>:<port> (no auth, no TLS); empty: only the data dir's socket")
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
	for _, u := range urls {
		if u.Scheme != "unix" {
			continue
		}
		// Like the data dir: whoever enters the socket's dir reaches the store.
		if loose, err := store.PrepareDataDir(filepath.Dir(u.Path)); err != nil {
			return fmt.Errorf("--listen-client %s: %w", u.String(), err)
		} else if loose != 0 {
			log.Warn("socket dir was open to other users; tightened it", "dir", filepath.Dir(u.Path), "was", fmt.Sprintf("%04o", loose), "now", "0700")
		}
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
	metricsAt, err := serveMetrics(ctx, *metricsAddr, reg, nil, log)
	if err != nil {
		return err
	}
	sock, err := store.EmbeddedEndpoint(*dataDir)
	if err != nil {
		return err
	}
	eps := []string{sock}
	var plain []string
	for _, u := range urls {
		eps = append(eps, u.String())
		if u.Scheme == "http" {
			plain = append(plain, u.String())
		}
	}
	if len(plain) > 0 {
		log.Warn("etcd serves plain http without auth: whoever reaches these addresses (a local user can reach a Docker bridge network's addresses from the host) reads and writes the whole store; prefer a unix:// socket in a volume shared with the stages",
			"listen", strings.Join(plain, ","))
	}
	log.Info("portico etcd started", "endpoints", strings.Join(eps, ","), "data_dir", absPath(*dataDir), "metrics", metricsAt)
	err = runStages(ctx, log, map[string]stage{"etcd": emb})
	log.Info("portico etcd stopped", "reason", stopReason(ctx, err))
	return err
}

// parseClientURLs checks --listen-client values: unix:///abs/path.sock,
// or http://ip:port (empty ip: all addresses). https would need server
// certificates the command does not manage; a host name would be resolved
// once, silently.
func parseClientURLs(vals []string) ([]url.URL, error) {
	var out []url.URL
	for _, v := range vals {
		v = strings.TrimSpace(v)
		u, err := url.Parse(v)
		if err != nil {
			return nil, fmt.Errorf("--listen-client %q: %w", v, err)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("--listen-client %q: give only unix:///path or http://host:port", v)
		}
		switch u.Scheme {
		case "unix":
			if u.Host != "" || !filepath.IsAbs(u.Path) || filepath.Clean(u.Path) != u.Path || u.Path == "/" {
				return nil, fmt.Errorf("--listen-client %q: give unix:///<absolute path of the socket>", v)
			}
		case "http":
			if u.Path != "" && u.Path != "/" {
				return nil, fmt.Errorf("--listen-client %q: give only unix:///path or http://host:port", v)
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
		default:
			return nil, fmt.Errorf("--listen-client %q: scheme must be unix or http", v)
		}
		out = append(out, *u)
	}
	return out, nil
}
