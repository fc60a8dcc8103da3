package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// secretFlag is a flag that holds a secret. It comes in two forms,
// --<name> (a value, or PORTICO_<NAME>) and --<name>-file (a path, or
// PORTICO_<NAME>_FILE); command.parse resolves them: both forms at once
// are an error, and a value given on the command line, where every local
// user can read it in /proc/<pid>/cmdline, is accepted with a warning.
type secretFlag struct {
	name  string
	value string
	file  string
}

func (s *secretFlag) String() string     { return "" } // never print a secret
func (s *secretFlag) Set(v string) error { s.value = v; return nil }

// secretFileFlag is the --<name>-file form of a secretFlag.
type secretFileFlag struct{ s *secretFlag }

func (f secretFileFlag) String() string {
	if f.s == nil {
		return ""
	}
	return f.s.file
}
func (f secretFileFlag) Set(v string) error { f.s.file = v; return nil }

// addSecret defines --name and --name-file.
func addSecret(fs *flag.FlagSet, name, usage string) *secretFlag {
	s := &secretFlag{name: name}
	fs.Var(s, name, usage+"; on the command line it is visible to every local user: prefer --"+name+"-file or "+envName(name))
	fs.Var(secretFileFlag{s}, name+"-file", "file holding the "+usage+" (one trailing newline is ignored)")
	return s
}

// Value is the resolved secret ("" if none was given).
func (s *secretFlag) Value() string { return s.value }

// resolve reads the file form and checks the two forms against each other.
// onCommandLine says whether --name itself was on the command line; the
// returned warning is then non-empty.
func (s *secretFlag) resolve(onCommandLine bool) (warning string, err error) {
	if s.value != "" && s.file != "" {
		return "", fmt.Errorf("--%s and --%s-file (or %s and %s) both given: give one", s.name, s.name, envName(s.name), envName(s.name+"-file"))
	}
	if s.file != "" {
		b, err := os.ReadFile(s.file)
		if err != nil {
			return "", fmt.Errorf("--%s-file: %w", s.name, err)
		}
		v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if v == "" {
			return "", fmt.Errorf("--%s-file %s: empty", s.name, s.file)
		}
		s.value = v
		return "", nil
	}
	if onCommandLine && s.value != "" {
		return fmt.Sprintf("--%s was given on the command line, where every local user can read it in /proc; use --%s-file or %s", s.name, s.name, envName(s.name)), nil
	}
	return "", nil
}

// resolveSecrets resolves every secretFlag of fs; given holds the flags
// set on the command line. It returns the warnings to log.
func resolveSecrets(fs *flag.FlagSet, given map[string]bool) ([]secretWarning, error) {
	var (
		warns []secretWarning
		errs  []error
	)
	fs.VisitAll(func(f *flag.Flag) {
		s, ok := f.Value.(*secretFlag)
		if !ok {
			return
		}
		w, err := s.resolve(given[f.Name])
		if err != nil {
			errs = append(errs, err)
		}
		if w != "" {
			warns = append(warns, secretWarning{flag: "--" + f.Name, msg: w})
		}
	})
	return warns, errors.Join(errs...)
}

// secretWarning is a secret given where others can see it.
type secretWarning struct{ flag, msg string }

// logWarnings logs what parse found worth a warning.
func (c *command) logWarnings(log *slog.Logger) {
	for _, w := range c.warnings {
		log.Warn("secret on the command line", "flag", w.flag, "advice", w.msg)
	}
}
