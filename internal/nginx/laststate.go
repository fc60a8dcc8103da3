package nginx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/portico/portico/internal/atomicfile"
	"github.com/portico/portico/internal/store"
)

// storeWait is how long the stage waits for the store's first lists
// before it reports that it serves the last good config without them.
const storeWait = 5 * time.Second

// lastGood reads the config nginx last ran (supervised mode), and returns
// it if `nginx -t` still accepts it under the current main config: the
// stage then starts nginx from it at once, before the store answers, and
// never replaces it with an emptier one because of a failed first render.
// It returns nil when there is none (a first start) or nginx refuses it.
func (s *Stage) lastGood(ctx context.Context) ([]byte, error) {
	conf, err := os.ReadFile(s.applier.ConfPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("last good config: %w", err)
	}
	if len(conf) == 0 {
		return nil, nil
	}
	// Rendered with other settings (listen addresses, template, include
	// dir, nginx version): serving it could listen where the operator no
	// longer wants nginx to.
	if mark, _ := os.ReadFile(s.settingsFile()); string(mark) != s.settingsKey {
		return nil, fmt.Errorf("last good config %s: rendered with other settings", s.applier.ConfPath)
	}
	if err := s.applier.test(ctx, "-p", s.applier.Supervised.Prefix, "-c", filepath.Join(s.applier.Supervised.Prefix, "nginx.conf"),
		"-g", "daemon off;"); err != nil {
		return nil, fmt.Errorf("last good config %s: %w", s.applier.ConfPath, err)
	}
	return conf, nil
}

// startStatic is the start of Run up to the first render: in supervised
// mode it starts nginx from the last good config, if any, then waits for
// the store's first lists (reporting once after storeWait that they do not
// come), and for that nginx to be up, so the first apply can reload it.
func (s *Stage) startStatic(ctx context.Context, mc, mb *store.Mirror, notify <-chan struct{}, startNginx func(), supDone <-chan error) error {
	started := false
	if s.sup != nil {
		conf, err := s.lastGood(ctx)
		if err != nil {
			s.log.Warn("not starting from the config on disk", "err", err)
		} else if conf != nil {
			s.applier.Adopt(conf)
			s.log.Info("starting nginx from the last good config", "sha256", Hash(conf)[:12])
			startNginx()
			started = true
		}
	}
	if !started {
		s.markStarted() // nothing to serve before the store answers
	}
	s.m.storeSynced.Set(0)
	// Wait for both first lists, so the first config is complete.
	waitStart, reported := time.Now(), false
	for {
		_, _, ok1 := mc.Snapshot()
		_, _, ok2 := mb.Snapshot()
		if ok1 && ok2 {
			break
		}
		if !reported && time.Since(waitStart) >= storeWait {
			reported = true
			s.log.Error("the store does not answer; nginx serves the last good config until it does",
				"waited", storeWait, "nginx_running", started)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-supDone:
			return err
		case <-notify:
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.m.storeSynced.Set(1)
	if reported {
		s.log.Info("the store answers again")
	}
	if !started {
		return nil
	}
	// Reload only an nginx that has started.
	select {
	case <-s.sup.Up():
	case err := <-supDone:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Minute):
	}
	return nil
}

// settingsFile records the settings the config on disk was rendered with.
func (s *Stage) settingsFile() string { return s.applier.ConfPath + ".settings" }

// markSettings records, after an apply, that the config on disk was
// rendered with the current settings (once per run: they do not change).
func (s *Stage) markSettings() {
	if s.sup == nil || s.settingsMarked {
		return
	}
	if _, err := atomicfile.WriteIfChanged(s.settingsFile(), []byte(s.settingsKey), 0o600); err != nil {
		s.log.Warn("record the settings of the config on disk", "err", err)
		return
	}
	s.settingsMarked = true
}
