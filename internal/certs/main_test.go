package certs_test

import (
	"log/slog"
	"testing"

	legolog "github.com/go-acme/lego/v5/log"

	"github.com/portico/portico/internal/redact"
	"github.com/portico/portico/internal/testenv/acmetest"
)

// legoLogs receives lego's process-wide log, wired as cmd/portico does
// (through redact.Logger); set once in TestMain, before any test runs.
var legoLogs syncBuffer

func TestMain(m *testing.M) {
	// lego follows CNAMEs with a process-wide resolver; keep it on loopback.
	acmetest.PinLegoResolver()
	legolog.SetDefault(redact.Logger(slog.New(slog.NewTextHandler(&legoLogs, nil))))
	m.Run()
}
