package porticotest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// A decoy container (dockertest.WithDecoy) runs beside every test package
// that uses Docker. It carries every label and environment variable Portico
// reads, including portico.default=true, but not the tests' own run label:
// a portico or reporter that watches the whole daemon instead of its own
// test's containers serves it, and the checks here fail the test.
const (
	// RunLabel marks every container and network of one test
	// (dockertest.Env); its value is the test's run id.
	RunLabel = "portico-test.run"
	// DecoyLabel marks the decoy; its value is the decoy's id.
	DecoyLabel = "portico-test.decoy"
	// DecoyVHost is the decoy's vhost in every form.
	DecoyVHost = "decoy.portico-test.test"
	// DecoyName starts the decoy's name, which its backend puts in every
	// answer ("name=portico-decoy-…"): a body containing it was served by
	// the decoy.
	DecoyName = "portico-decoy"
)

// needsLabelFilter reports whether args start a stage that lists the
// Docker daemon's containers (run, reporter) without --label-filter.
func needsLabelFilter(args []string) bool {
	if len(args) == 0 || (args[0] != "run" && args[0] != "reporter") {
		return false
	}
	for _, a := range args[1:] {
		if a == "--label-filter" || a == "-label-filter" || strings.HasPrefix(a, "--label-filter=") || strings.HasPrefix(a, "-label-filter=") {
			return false
		}
	}
	return true
}

// httpAddrs returns the --http-addr values in args (comma separated lists
// split; a missing host is 127.0.0.1).
func httpAddrs(args []string) []string {
	var vals []string
	for i, a := range args {
		switch {
		case (a == "--http-addr" || a == "-http-addr") && i+1 < len(args):
			vals = append(vals, args[i+1])
		case strings.HasPrefix(a, "--http-addr="):
			vals = append(vals, strings.TrimPrefix(a, "--http-addr="))
		}
	}
	var out []string
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			host, port, err := net.SplitHostPort(s)
			if err != nil {
				continue
			}
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1"
			}
			out = append(out, net.JoinHostPort(host, port))
		}
	}
	return out
}

// watchesDecoy reports whether args select the decoy on purpose (the guard
// test's control, which must serve it).
func watchesDecoy(args []string) bool {
	for _, a := range args {
		if strings.Contains(a, DecoyLabel+"=") {
			return true
		}
	}
	return false
}

// ServesDecoy returns an error if nginx at addr answers the decoy's vhost,
// or an unknown host (the default server), with the decoy's body. Any other
// answer, or none, is not the decoy.
func ServesDecoy(addr string) error {
	for _, host := range []string{DecoyVHost, "not-a-vhost.invalid"} {
		code, body, err := GetWithin(addr, host, time.Second)
		if err == nil && strings.Contains(body, "name="+DecoyName) {
			return fmt.Errorf("nginx at %s serves the decoy container for Host %s (%d %q): the portico watches containers that are not its test's (no --label-filter %s=<run id>?)",
				addr, host, code, strings.TrimSpace(body), RunLabel)
		}
	}
	return nil
}

// checkDecoy fails t if a still-running portico started with args serves
// the decoy on any of its HTTP addresses.
func checkDecoy(t testing.TB, args []string) {
	t.Helper()
	if watchesDecoy(args) {
		return
	}
	for _, a := range httpAddrs(args) {
		if err := ServesDecoy(a); err != nil {
			t.Error(err)
		}
	}
}
