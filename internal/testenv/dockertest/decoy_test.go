package dockertest_test

import (
	"slices"
	"testing"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/dockertest"
)

// TestDecoyIsAValidDefaultRoute: the decoy carries every label and variable
// Portico reads, and a portico that saw it would route it, as the default
// server, so a portico that ignores it does so because of its label filter.
func TestDecoyIsAValidDefaultRoute(t *testing.T) {
	labels, env := dockertest.DecoyLabels(), dockertest.DecoyEnv()
	for _, k := range append(append([]string(nil), routing.KnownLabels...),
		routing.LegacyVhost, routing.LegacyPort, routing.LegacyProtocol, routing.LegacyDefault) {
		if labels[k] == "" && !slices.Contains(dockertest.DecoyExempt, k) {
			t.Errorf("the decoy lacks label %s", k)
		}
	}
	for _, k := range routing.AllowedEnv {
		if env[k] == "" && !slices.Contains(dockertest.DecoyExempt, k) {
			t.Errorf("the decoy lacks variable %s", k)
		}
	}
	if _, ok := labels[dockertest.RunLabel]; ok {
		t.Errorf("the decoy carries the tests' run label %s", dockertest.RunLabel)
	}
	c := store.Container{
		ID: "decoy", Name: dockertest.DecoyContainerName(), Host: "h", Labels: labels, Env: env,
		Networks: map[string]store.Network{"bridge": {IPv4: "172.17.0.9"}},
		Ports:    []store.Port{{Port: 80, Proto: "tcp"}},
		State:    "running",
	}
	svc, probs := routing.ParseService(c, routing.Options{Network: "some-test-network"})
	if len(probs) > 0 {
		t.Errorf("problems: %+v", probs)
	}
	if len(svc.Hosts) != 1 || svc.Hosts[0] != dockertest.DecoyVHost || !svc.Default || !svc.Live ||
		svc.Addr != "172.17.0.9:80" || svc.HTTPS != routing.HTTPSBoth {
		t.Errorf("service %+v, want %s live at 172.17.0.9:80, default, https both", svc, dockertest.DecoyVHost)
	}
}
