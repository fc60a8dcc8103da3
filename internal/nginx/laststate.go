package nginx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
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
	if err := s.applier.test(ctx, "-p", s.applier.Supervised.Prefix, "-c", filepath.Join(s.applier.Supervised.Prefix, "nginx.conf"),
		"-g", "daemon off;"); err != nil {
		return nil, fmt.Errorf("last good config %s: %w", s.applier.ConfPath, err)
	}
	return conf, nil
}
