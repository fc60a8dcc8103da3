package reporter_test

import (
	"os"
	"testing"

	"github.com/portico/portico/internal/testenv/dockertest"
)

// The decoy container runs for the whole package (dockertest.WithDecoy):
// every reporter here must ignore it (TestDecoyNotReported).
func TestMain(m *testing.M) {
	os.Exit(dockertest.WithDecoy(m).Run())
}
