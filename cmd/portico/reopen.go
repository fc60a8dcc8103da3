package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/portico/portico/internal/nginx"
)

// reopenOnSignal forwards SIGUSR1 to the supervised nginx, which reopens
// its log files: what logrotate's postrotate sends (docs/access-log.md).
type reopenOnSignal struct {
	ng  *nginx.Stage
	log *slog.Logger
}

func (r reopenOnSignal) Run(ctx context.Context) error {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
			if err := r.ng.ReopenLogs(); err != nil {
				r.log.Warn("SIGUSR1: logs not reopened", "err", err)
				continue
			}
			r.log.Info("SIGUSR1: nginx reopens its logs")
		}
	}
}

// withReopen runs the nginx stage and the SIGUSR1 forwarder together
// (`portico nginx`).
type withReopen struct {
	*nginx.Stage
	reopen reopenOnSignal
}

func (w withReopen) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go w.reopen.Run(ctx)
	return w.Stage.Run(ctx)
}
