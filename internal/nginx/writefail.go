package nginx

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/portico/portico/internal/atomicfile"
)

// A file the stage writes for nginx's next start (nginx.conf, the dynamic
// path's state file) that cannot be written is no reason to stop serving:
// nginx keeps what it runs, the failure is reported (status, log) as that
// write, and the write is retried. Unchanged files are never rewritten
// (atomicfile.WriteIfChanged), so a restart on a full disk needs no space.

// WriteError is a file the stage could not write while nginx serves on.
type WriteError struct {
	// What names the file for the operator; Path is the file.
	What, Path string
	// Serving says what nginx serves meanwhile.
	Serving string
	Err     error
}

func (e *WriteError) Error() string {
	msg := fmt.Sprintf("%s %s not written (%s): %v", e.What, e.Path, e.Serving, e.Err)
	if errors.Is(e.Err, syscall.ENOSPC) || errors.Is(e.Err, syscall.EDQUOT) {
		msg += "; free space on its filesystem, Portico retries"
	}
	return msg
}

func (e *WriteError) Unwrap() error { return e.Err }

// writeMain writes nginx.conf if it changed. A failure with a main config
// already on disk is reported and retried (retryMain) while nginx runs
// that one; with none, there is nothing to start from, and it is returned.
func (s *Stage) writeMain() error {
	wrote, err := atomicfile.WriteIfChanged(s.sup.Main, s.mainConf, 0o644)
	if err == nil {
		if s.mainErr != nil {
			s.log.Info("nginx main config written", "path", s.sup.Main)
		}
		s.mainErr = nil
		if wrote && s.sup.Pid() != 0 {
			s.applier.ReloadNext()
		}
		return nil
	}
	if _, serr := os.Stat(s.sup.Main); serr != nil {
		return fmt.Errorf("nginx main config: %w", err)
	}
	werr := &WriteError{What: "nginx main config", Path: s.sup.Main, Serving: "nginx runs the one on disk", Err: err}
	if s.mainErr == nil {
		s.log.Error("nginx main config not written; nginx runs the one on disk", "err", werr)
	}
	s.mainErr = werr
	return nil
}

// retryMain retries a main config that could not be written.
func (s *Stage) retryMain() {
	if s.sup != nil && s.mainErr != nil {
		s.writeMain()
	}
}
