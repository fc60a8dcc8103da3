package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// env is the process environment, passed in so that tests can supply their own.
type env struct {
	lookup func(string) (string, bool)
}

func (e env) get(k string) string {
	if e.lookup == nil {
		return ""
	}
	v, _ := e.lookup(k)
	return v
}

// envName is the PORTICO_* variable that stands for a flag.
func envName(flagName string) string {
	return "PORTICO_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// command is one subcommand's flag set plus its one-line summary.
type command struct {
	fs      *flag.FlagSet
	summary string
	// warnings are found by parse and logged by the command once it has
	// a logger (logWarnings).
	warnings []secretWarning
}

func newCommand(name, summary string, out io.Writer) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	c := &command{fs: fs, summary: summary}
	fs.Usage = func() { c.usage(out) }
	return c
}

// parse reads args, then fills every flag not given on the command line from
// its PORTICO_* environment variable. Command-line flags win. Then it
// resolves the secret flags' two forms (see secretFlag). Its errors are
// usage errors (exit code 2).
func (c *command) parse(args []string, e env) error {
	return usageError(c.parseArgs(args, e))
}

func (c *command) parseArgs(args []string, e env) error {
	if err := c.fs.Parse(args); err != nil {
		return err
	}
	if c.fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", c.fs.Name(), c.fs.Arg(0))
	}
	given := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	c.fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || e.lookup == nil {
			return
		}
		if v, ok := e.lookup(envName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	warns, err := resolveSecrets(c.fs, given)
	c.warnings = warns
	return err
}

func (c *command) usage(out io.Writer) {
	fmt.Fprintf(out, "Usage: portico %s [flags]\n\n%s\n\nFlags (each also read from the environment variable shown):\n", c.fs.Name(), c.summary)
	var flags []*flag.Flag
	c.fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
	sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
	for _, f := range flags {
		def := ""
		if f.DefValue != "" && f.DefValue != "[]" && f.DefValue != "0s" {
			def = fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(out, "  --%s\n      %s%s\n      env %s\n", f.Name, f.Usage, def, envName(f.Name))
	}
}

// listFlag is a comma-separated list; repeating the flag appends.
type listFlag struct {
	vals []string
	set  bool
}

func newList(def ...string) *listFlag { return &listFlag{vals: def} }

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }

func (l *listFlag) Set(s string) error {
	if !l.set {
		l.vals, l.set = nil, true
	}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			l.vals = append(l.vals, v)
		}
	}
	return nil
}

func (l *listFlag) list(fs *flag.FlagSet, name, usage string) *listFlag {
	fs.Var(l, name, usage)
	return l
}

func durationFlag(fs *flag.FlagSet, name string, def time.Duration, usage string) *time.Duration {
	return fs.Duration(name, def, usage)
}
