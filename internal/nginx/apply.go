package nginx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/portico/portico/internal/atomicfile"
	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/nginx/supervise"
)

// Reloader makes the running nginx read its config again. It reports
// whether a running nginx actually reloaded (false: none is running, and the
// next start reads the new file).
type Reloader interface {
	Reload(ctx context.Context) (bool, error)
}

// Applier puts a rendered config in place without ever letting nginx read a
// partial or unvalidated file.
//
// Supervised (Supervised set): the candidate is written next to the live
// file, a candidate main config including it is tested with `nginx -t`, and
// only then is it renamed over the live file and nginx reloaded.
//
// External (TestMain set): the system's main config includes ConfPath, so
// the candidate is renamed into place, `nginx -t -c TestMain` runs, and the
// previous file is restored if the test fails. The file starts with the
// hash sizes long host names need, less those the system's config sets
// itself (hashsize.go).
type Applier struct {
	// Binary is the nginx executable.
	Binary string
	// ConfPath is the live rendered config nginx includes.
	ConfPath string
	// Supervised, when non-nil, is the main config whose Prefix nginx runs
	// with; its Include is ignored (the candidate is substituted).
	Supervised *render.MainConf
	// TestMain is the system main config tested in external mode.
	TestMain string
	// Reloader reloads nginx after a successful swap.
	Reloader Reloader
	// TestTimeout bounds `nginx -t`; 0 means 2 minutes.
	TestTimeout time.Duration

	current    string // hash of the applied config
	failed     string // hash of the last config nginx -t refused
	failedErr  error
	pendingRel bool          // swapped but the reload failed: reload again
	lastTest   time.Duration // how long the last nginx -t took
	// hashOmit holds the hash size directives the system's config sets
	// (external mode): nginx -t said they were duplicate.
	hashOmit map[string]bool
}

// Result says what Apply did.
type Result struct {
	Hash     string
	Changed  bool // a new config was put in place
	Reloaded bool // a running nginx reloaded it
	// Test and Reload are how long `nginx -t` and the reload took.
	Test, Reload time.Duration
}

// Hash is the hex SHA-256 of a config.
func Hash(conf []byte) string {
	h := sha256.Sum256(conf)
	return hex.EncodeToString(h[:])
}

// Adopt records conf, already on disk and tested, as the config in place.
func (a *Applier) Adopt(conf []byte) { a.current = Hash(conf) }

// Current is the hash of the config in place ("" before the first apply).
func (a *Applier) Current() string { return a.current }

// ReloadNext makes the next Apply reload nginx even if the config is the
// same (a main config nginx has not read yet).
func (a *Applier) ReloadNext() { a.pendingRel = true }

// Apply validates conf and puts it in place. The same bytes as the current
// config are a no-op, and the same bytes as the last refused config fail
// again without running nginx -t.
func (a *Applier) Apply(ctx context.Context, conf []byte) (Result, error) {
	h := Hash(conf)
	res := Result{Hash: h}
	if h == a.current && !a.pendingRel {
		return res, nil
	}
	if h == a.failed {
		return res, a.failedErr
	}
	if h != a.current {
		var err error
		if a.Supervised != nil {
			err = a.swapSupervised(ctx, conf)
		} else {
			err = a.swapExternal(ctx, conf)
		}
		res.Test = a.lastTest
		if err != nil {
			var te *TestError
			if errors.As(err, &te) {
				a.failed, a.failedErr = h, err
			}
			return res, err
		}
		a.current, a.failed, a.failedErr = h, "", nil
		res.Changed = true
	}
	a.pendingRel = true
	// nginx re-parses the config on reload: allow a few times what nginx -t
	// took before calling the reload failed.
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second+3*a.lastTest)
	defer cancel()
	start := time.Now()
	reloaded, err := a.Reloader.Reload(rctx)
	res.Reload = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("reload nginx: %w", err)
	}
	a.pendingRel = false
	res.Reloaded = reloaded
	return res, nil
}

// confMode is the rendered config's mode: it holds private keys.
const confMode = 0o600

// TestError is nginx -t refusing a config; Output is what nginx said.
type TestError struct {
	Output string
	Err    error
	// Hint, when set, says what the operator should change.
	Hint string
}

func (e *TestError) Error() string {
	if e.Hint != "" {
		return fmt.Sprintf("nginx -t: %v: %s; %s", e.Err, e.Output, e.Hint)
	}
	return fmt.Sprintf("nginx -t: %v: %s", e.Err, e.Output)
}

func (e *TestError) Unwrap() error { return e.Err }

// Check runs `nginx -t` on conf without putting it in place (a probe):
// supervised, as a candidate; external, swapped in for the test and the
// previous file always restored.
func (a *Applier) Check(ctx context.Context, conf []byte) error {
	if a.Supervised != nil {
		return a.testSupervised(ctx, conf, false)
	}
	return a.testExternal(ctx, conf, false)
}

func (a *Applier) swapSupervised(ctx context.Context, conf []byte) error {
	return a.testSupervised(ctx, conf, true)
}

func (a *Applier) swapExternal(ctx context.Context, conf []byte) error {
	return a.testExternal(ctx, conf, true)
}

func (a *Applier) testSupervised(ctx context.Context, conf []byte, install bool) error {
	cand := a.ConfPath + ".candidate"
	if err := atomicfile.Write(cand, conf, confMode); err != nil {
		return err
	}
	defer os.Remove(cand)
	mc := *a.Supervised
	mc.Include = cand
	main, err := mc.Render()
	if err != nil {
		return err
	}
	candMain := filepath.Join(mc.Prefix, "nginx.candidate.conf")
	if err := atomicfile.Write(candMain, main, 0o644); err != nil {
		return err
	}
	defer os.Remove(candMain)
	if err := a.test(ctx, "-p", mc.Prefix, "-c", candMain, "-g", "daemon off;"); err != nil || !install {
		return err
	}
	if err := os.Rename(cand, a.ConfPath); err != nil {
		return fmt.Errorf("install %s: %w", a.ConfPath, err)
	}
	return nil
}

func (a *Applier) testExternal(ctx context.Context, conf []byte, install bool) error {
	prev, err := os.ReadFile(a.ConfPath)
	hadPrev := err == nil
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read %s: %w", a.ConfPath, err)
	}
	args := []string{}
	if a.TestMain != "" {
		args = append(args, "-c", a.TestMain)
	}
	if a.hashOmit == nil {
		a.hashOmit = map[string]bool{}
	}
	restored := false
	var terr error
	// Each round leaves out one more duplicate hash directive, or once puts
	// back the omitted ones (the system's config may no longer set them):
	// bounded by twice their number, plus one.
	for range 2*len(hashDirectives) + 1 {
		if err := atomicfile.Write(a.ConfPath, append(hashPreamble(a.hashOmit), conf...), confMode); err != nil {
			return err
		}
		terr = a.test(ctx, args...)
		var te *TestError
		if !errors.As(terr, &te) {
			break
		}
		if d := duplicateHash(te.Output); d != "" && !a.hashOmit[d] {
			a.hashOmit[d] = true
			continue
		}
		names := hashTooSmall(te.Output)
		if hint := hashHint(names, a.hashOmit, a.TestMain, a.ConfPath); hint != "" {
			if !restored {
				restored = true
				for _, n := range names {
					delete(a.hashOmit, n)
				}
				continue
			}
			te.Hint = hint
		}
		break
	}
	if terr == nil && install {
		return nil
	}
	var rerr error
	if hadPrev {
		rerr = atomicfile.Write(a.ConfPath, prev, confMode)
	} else {
		rerr = os.Remove(a.ConfPath)
	}
	if rerr != nil {
		return errors.Join(terr, fmt.Errorf("restore previous %s: %w", a.ConfPath, rerr))
	}
	return terr
}

func (a *Applier) test(ctx context.Context, args ...string) error {
	to := a.TestTimeout
	if to == 0 {
		to = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, to)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, a.Binary, append([]string{"-t", "-q"}, args...)...).CombinedOutput()
	a.lastTest = time.Since(start)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("run %s -t: %w", a.Binary, err) // not the config's fault
		}
		return &TestError{Output: supervise.OneLine(out), Err: err}
	}
	return nil
}
