package main

import (
	"context"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/certs/localca"
	"github.com/portico/portico/internal/status"
	"github.com/portico/portico/internal/store"
)

const usage = `Portico puts Docker containers behind nginx with automatic certificates.

Usage: portico <command> [flags]

Commands:
  run       every stage in one process, on an embedded etcd, with a supervised nginx
  reporter  watch the Docker daemon and write one record per container to etcd
  certs     derive, obtain, store and renew certificates
  nginx     render nginx config from the records and reload nginx
  status    show containers, routes, certificates, warnings and errors
  explain   show how one host name is served, or why it is not
  etcd      serve the embedded etcd on its own, for a stack whose stages run apart (compose.yaml)
  ui        serve the operators' web page (also: portico run --ui-addr)
  etcd-setup  create the stages' etcd roles and users on an external cluster
  version   print the version, commit and Go version of this binary

Run 'portico <command> --help' for a command's flags.
`

// run is the whole program: main only adds signals and the exit code.
func run(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError(errors.New("no command"))
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "run":
		err = cmdRun(ctx, rest, e, stderr)
	case "reporter":
		err = cmdReporter(ctx, rest, e, stderr)
	case "certs":
		err = cmdCerts(ctx, rest, e, stderr)
	case "nginx":
		err = cmdNginx(ctx, rest, e, stderr)
	case "status":
		err = cmdStatus(ctx, rest, e, stdout, stderr)
	case "explain":
		err = cmdExplain(ctx, rest, e, stdout, stderr)
	case "etcd":
		err = cmdEtcd(ctx, rest, e, stderr)
	case etcdChildCommand: // hidden: started by `portico run`
		err = cmdEtcdChild(ctx, rest, e, stdout, stderr)
	case "ui":
		err = cmdUI(ctx, rest, e, stderr)
	case "etcd-setup":
		err = cmdEtcdSetup(ctx, rest, e, stdout, stderr)
	case "version", "--version":
		err = cmdVersion(rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprint(stderr, usage)
		return usageError(fmt.Errorf("unknown command %q", cmd))
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// stage is what every pipeline stage offers the runner.
type stage interface {
	Run(ctx context.Context) error
}

// runStages runs stages until ctx ends or one fails; a failure stops the rest.
func runStages(ctx context.Context, log *slog.Logger, stages map[string]stage) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		running = map[string]bool{}
	)
	for name, s := range stages {
		wg.Add(1)
		running[name] = true
		go func() {
			defer wg.Done()
			log.Info("stage starting", "stage", name)
			err := s.Run(ctx)
			mu.Lock()
			delete(running, name)
			mu.Unlock()
			if err != nil && !errors.Is(err, context.Canceled) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("stage %s: %w", name, err))
				mu.Unlock()
				cancel()
			}
		}()
	}
	stopped := make(chan struct{})
	go func() {
		// A stage that does not end soon after the stop is named once, so
		// that a slow shutdown says where it waits.
		select {
		case <-stopped:
			return
		case <-ctx.Done():
		}
		select {
		case <-stopped:
		case <-time.After(stageStopWarn):
			mu.Lock()
			names := slices.Sorted(maps.Keys(running))
			mu.Unlock()
			log.Warn("stages still stopping", "stages", strings.Join(names, ","), "after", stageStopWarn)
		}
	}()
	wg.Wait()
	close(stopped)
	return errors.Join(errs...)
}

// stageStopWarn is how long runStages waits after a stop before it names
// the stages that have not ended.
const stageStopWarn = 5 * time.Second

// connect resolves the endpoints (flag, else the data dir's running
// instance) and opens the etcd client.
func connect(so *storeOpts, dataDir string) (*clientv3.Client, error) {
	eps, err := endpoints(so, dataDir)
	if err != nil {
		return nil, err
	}
	return store.Connect(so.config(eps))
}

func endpoints(so *storeOpts, dataDir string) ([]string, error) {
	eps := so.endpoints.vals
	if len(eps) == 0 {
		if dataDir == "" {
			return nil, errors.New("no --etcd-endpoints and no --data-dir of a running `portico run`")
		}
		ep, err := store.ReadEndpoint(dataDir)
		if err != nil {
			return nil, fmt.Errorf("no --etcd-endpoints given: %w", err)
		}
		eps = []string{ep}
	}
	return eps, nil
}

// serveMetrics serves reg on addr until ctx ends and returns the address
// it listens on; "" serves nothing. /healthz answers while the process
// runs; ready, when set, answers /readyz (the store's reach:
// internal/storehealth).
func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, ready http.Handler, log *slog.Logger) (string, error) {
	if addr == "" {
		return "", nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("--metrics-addr %q: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	if ready != nil {
		mux.Handle("/readyz", ready)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("serving metrics", "addr", l.Addr().String())
	go srv.Serve(l)
	return l.Addr().String(), nil
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// readPrefix reads every key under the prefix, with the revisions that
// ownership and caching need: what status, explain and the page show.
func readPrefix(ctx context.Context, cli *clientv3.Client, keys store.Keys) (map[string]store.Entry, error) {
	resp, err := cli.Get(ctx, keys.Prefix()+"/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read %s from etcd: %w", keys.Prefix(), err)
	}
	kvs := make(map[string]store.Entry, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		kvs[string(kv.Key)] = store.Entry{Value: kv.Value, ModRevision: kv.ModRevision, CreateRevision: kv.CreateRevision}
	}
	return kvs, nil
}

func cmdStatus(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	c := newCommand("status", "Show containers, routes, certificates, warnings and errors from the store.", stderr)
	so := addStore(c.fs)
	dataDir := addDataDir(c.fs, defaultDataDir)
	network := c.fs.String("network", "", "the proxy's Docker network, as given to the nginx stage")
	node := c.fs.String("node", "", "show the routes as a proxy on this reporter host (the nginx stage's --node) sees them: containers of other hosts at their host's address and published port, and an error for one whose port is not published; empty: every container at its container address")
	allowed := addAllowedDomains(c.fs)
	expiry := addHostExpiry(c.fs)
	asJSON := c.fs.Bool("json", false, "print JSON instead of text")
	caCert := c.fs.Bool("local-ca-cert", false, "print the local CA's certificate (PEM), for clients to trust, instead of the status")
	if err := c.parse(args, e); err != nil {
		return err
	}
	c.logWarnings(slog.New(slog.NewTextHandler(stderr, nil)))
	if _, err := routingOptions(*network, allowed); err != nil {
		return err // a bad flag fails before the store is asked
	}
	cli, err := connectQuick(ctx, so, *dataDir, statusProbe)
	if err != nil {
		if len(so.endpoints.vals) == 0 {
			writeEtcdDown(stdout, *dataDir, *asJSON, time.Now())
		}
		return err
	}
	defer cli.Close()
	keys := so.keys()
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if *caCert {
		rootPEM, ok, err := localca.Load(gctx, cli, keys)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("no local CA yet: it is created with the first local certificate")
		}
		// Print the parsed certificate re-encoded, never the stored text
		// as it is: a record written straight into etcd could carry
		// terminal escapes around the PEM block.
		der, err := localca.RootDER(rootPEM)
		if err != nil {
			return err
		}
		_, err = stdout.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		return err
	}
	kvs, err := readPrefix(gctx, cli, keys)
	if err != nil {
		return err
	}
	// The nginx stage's --network and --allowed-domains, unless given here.
	if _, _, err := c.stageSettings(e, kvs, keys, stderr); err != nil {
		return err
	}
	ropts, err := routingOptions(*network, allowed)
	if err != nil {
		return err
	}
	ropts.Node = *node
	now := time.Now()
	rep := status.GatherExpiry(kvs, keys, ropts, now, *expiry)
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout, now)
	}
	if err != nil {
		return err
	}
	if n := rep.Errors(); n > 0 {
		return problemsError(n)
	}
	return nil
}

// defaultDataDir is where `portico run` keeps its state unless told otherwise.
const defaultDataDir = "/var/lib/portico"

func nginxDir(dataDir string) string { return filepath.Join(dataDir, "nginx") }
