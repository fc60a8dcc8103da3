package nginx

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/portico/portico/internal/htpasswd"
	"github.com/portico/portico/internal/redact"
	"github.com/portico/portico/internal/routing"
)

// authRefresh is how often the htpasswd files in use are read again: a
// changed file is served within this time (nginx reads the copy on every
// request).
const authRefresh = time.Second

// newAuthCopier places portico.auth-file's copies in an "auth" directory
// the workers can reach: under TempDir when set (run as root, the workers
// cannot enter the 0700 data dir, but can the 0711 worker temp dir), else
// under dir. Run as root, the copies are group WorkerGroup (nginx's
// default account's group without one), mode 0640 in a 0750 directory;
// else 0600, the workers being Portico's own user.
func newAuthCopier(cfg Config, dir string) (*htpasswd.Copier, error) {
	base := dir
	if cfg.TempDir != "" {
		base = cfg.TempDir
	}
	c := &htpasswd.Copier{Src: cfg.AuthDir, Dst: filepath.Join(base, "auth"), GID: -1}
	if cfg.AuthDir != "" {
		if st, err := os.Stat(cfg.AuthDir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("auth dir %s: not a directory", cfg.AuthDir)
		}
	}
	if os.Geteuid() == 0 && cfg.Mode != ModeExternal {
		group := cfg.WorkerGroup
		if group == "" {
			group = cfg.WorkerUser
		}
		if group == "" {
			// nginx's own default account, "nobody" with group
			// "nogroup" (or "nobody" where that group exists).
			group = nginxDefaultGroup()
		}
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("nginx worker group %q: %w", group, err)
		}
		if c.GID, err = strconv.Atoi(g.Gid); err != nil {
			return nil, fmt.Errorf("nginx worker group %q: gid %q: %w", cfg.WorkerGroup, g.Gid, err)
		}
	}
	return c, nil
}

func nginxDefaultGroup() string {
	if _, err := user.LookupGroup("nobody"); err == nil {
		return "nobody"
	}
	return "nogroup"
}

// syncAuth makes the copies of the files routes name current before they
// are applied; a missing or refused file is logged once and its copy is
// empty (401 for everyone).
func (s *Stage) syncAuth(routes []routing.Route) {
	var names []string
	for _, r := range routes {
		if r.Site.AuthFile != "" {
			names = append(names, r.Site.AuthFile)
		}
	}
	s.logAuth(s.auth.Sync(names))
}

// refreshAuth re-reads the files in use every authRefresh until ctx ends.
func (s *Stage) refreshAuth(ctx context.Context) {
	t := time.NewTicker(authRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.logAuth(s.auth.Refresh())
		}
	}
}

func (s *Stage) logAuth(errs []error) {
	for _, err := range errs {
		s.log.Error("htpasswd file refused", "err", redact.Error(err))
	}
}
