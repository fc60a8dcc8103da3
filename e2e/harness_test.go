package e2e

import (
	"testing"

	"github.com/portico/portico/internal/testenv/dockertest"
	"github.com/portico/portico/internal/testenv/porticotest"
)

// binary is the portico executable built once for the package by TestMain.
var binary string

// The decoy container runs for the whole package (dockertest.WithDecoy):
// every portico here must ignore it (TestDecoyIgnored).
func TestMain(m *testing.M) {
	porticotest.Main(dockertest.WithDecoy(m), &binary)
}

// Short names for the harness, bound to this package's binary.
var (
	freePort   = porticotest.FreePort
	addr       = porticotest.Addr
	eventually = porticotest.Eventually
	check      = porticotest.Check
	get        = porticotest.Get
	getTLS     = porticotest.GetTLS
	expect200  = porticotest.Expect200
	metric     = porticotest.Metric
)

type proc = porticotest.Proc

func start(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	return porticotest.Start(t, binary, env, args...)
}

func statusJSON(t testing.TB, args ...string) map[string]any {
	t.Helper()
	return porticotest.StatusJSON(t, binary, args...)
}
