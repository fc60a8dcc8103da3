// Command backend is the HTTP server of Portico's test image. It answers every
// request with its name and the request's Host, so a test can tell which
// container nginx routed to:
//
//	name=web-1 host=whoami.test
//
// It listens on :80 and on every port in PORT (comma separated). NAME
// overrides the name (default: the hostname). GET /healthz answers 200, or
// 503 after GET /healthz?set=fail (GET /healthz?set=ok heals it again).
// GET /headers answers with the peer address and every request header, one
// "Name: value" line each, sorted (a header sent twice gives two lines):
//
//	remote=172.18.0.1:41234
//	X-Forwarded-For: 203.0.113.7
//
// With HANG_ON_TERM=<duration> (e.g. 5s) a SIGTERM does not end the
// process at once: for that long it keeps its ports open but answers no
// request (each waits until the process exits), like an application busy
// shutting down, then it exits. With IGNORE_TERM=1 SIGTERM and SIGINT are
// logged and otherwise ignored: the process carries on serving. SIGHUP is
// logged and otherwise ignored, like a server reloading its configuration,
// and so is SIGQUIT, like a JVM printing a thread dump.
//
// GET /ws with "Upgrade: websocket" is a websocket echo (RFC 6455): each
// data frame comes back with the same opcode and payload, until a close.
//
// With EXIT_AFTER=<duration> (e.g. 30m) the process exits on its own after
// that long: a long-lived container (the decoy of dockertest.WithDecoy)
// started with AutoRemove then cannot outlive a test run that was killed.
//
// `backend healthcheck` probes http://127.0.0.1:80/healthz and exits 0 or 1,
// for Docker health checks in an image without a shell.
//
// With FASTCGI_PORT=<port> it also answers FastCGI (net/http/fcgi) there,
// "fastcgi name=<name> script=<SCRIPT_FILENAME> host=<Host> path=<path>".
//
// Build it static: CGO_ENABLED=0 go build.
package main

import (
	"cmp"
	"fmt"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/fcgi"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck())
	}
	name := os.Getenv("NAME")
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			log.Fatalf("hostname: %v", err)
		}
		name = h
	}
	var failing atomic.Bool
	hangOnTerm, err := time.ParseDuration(cmp.Or(os.Getenv("HANG_ON_TERM"), "0s"))
	if err != nil {
		log.Fatalf("HANG_ON_TERM: %v", err)
	}
	ignoreTerm := os.Getenv("IGNORE_TERM") == "1"
	var exitAfter <-chan time.Time
	if v := os.Getenv("EXIT_AFTER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			log.Fatalf("EXIT_AFTER: %v", err)
		}
		exitAfter = time.After(d)
	}
	terminating := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("set") {
		case "fail":
			failing.Store(true)
		case "ok":
			failing.Store(false)
		}
		if failing.Load() {
			http.Error(w, "failing", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "remote=%s\n", r.RemoteAddr)
		for _, k := range slices.Sorted(maps.Keys(r.Header)) {
			for _, v := range r.Header[k] {
				fmt.Fprintf(w, "%s: %s\n", k, v)
			}
		}
	})
	mux.HandleFunc("/ws", wsEcho)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "name=%s host=%s path=%s\n", name, r.Host, r.URL.Path)
	})

	ports := []string{"80"}
	for p := range strings.SplitSeq(os.Getenv("PORT"), ",") {
		if p = strings.TrimSpace(p); p != "" && p != "80" {
			ports = append(ports, p)
		}
	}
	errs := make(chan error, len(ports)+1)
	if p := os.Getenv("FASTCGI_PORT"); p != "" {
		l, err := net.Listen("tcp", ":"+p)
		if err != nil {
			log.Fatalf("FASTCGI_PORT: %v", err)
		}
		go func() {
			errs <- fmt.Errorf("fastcgi port %s: %w", p, fcgi.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "fastcgi name=%s script=%s host=%s path=%s\n", name, fcgi.ProcessEnv(r)["SCRIPT_FILENAME"], r.Host, r.URL.Path)
			})))
		}()
	}
	for _, p := range ports {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-terminating:
				<-r.Context().Done() // hang until the process exits
				return
			default:
			}
			mux.ServeHTTP(w, r)
		})
		srv := &http.Server{Addr: ":" + p, Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go func() { errs <- fmt.Errorf("port %s: %w", p, srv.ListenAndServe()) }()
	}
	// As PID 1 the process gets no default signal handling: exit on
	// SIGTERM/SIGINT so `docker stop` is quick.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP, syscall.SIGQUIT)
	// Logged once the signals are handled: a test that sends one waits for
	// this line.
	log.Printf("backend %s listening on %v", name, ports)
	for {
		select {
		case err := <-errs:
			log.Fatal(err)
		case <-exitAfter:
			log.Printf("backend %s: EXIT_AFTER passed, exiting", name)
		case s := <-hup:
			log.Printf("backend %s: %v, ignored", name, s)
			continue
		case s := <-stop:
			if ignoreTerm {
				log.Printf("backend %s: %v, ignored (IGNORE_TERM)", name, s)
				continue
			}
			if hangOnTerm > 0 {
				log.Printf("backend %s: %v, answering nothing for %s, then exiting", name, s, hangOnTerm)
				close(terminating)
				time.Sleep(hangOnTerm)
			}
			log.Printf("backend %s: %v, exiting", name, s)
		}
		return
	}
}

func healthcheck() int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://127.0.0.1:80/healthz")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status)
		return 1
	}
	return 0
}
