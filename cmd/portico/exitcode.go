package main

import (
	"errors"
	"fmt"
)

// Exit codes of every command (README "Exit codes").
const (
	exitOK       = 0 // done; status: no errors (warnings do not count)
	exitFailed   = 1 // the command failed: a stage stopped, the store did not answer
	exitUsage    = 2 // bad flags, arguments or environment values; no command run
	exitProblems = 3 // status: printed, and the report holds errors
)

// exitError carries a process exit code other than exitFailed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: exitUsage, err: err}
}

// problemsError says status printed a report holding n errors.
func problemsError(n int) error {
	return &exitError{code: exitProblems, err: fmt.Errorf("status: %d error(s) in the report", n)}
}

// exitCode maps run's error to the process exit code.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailed
}
