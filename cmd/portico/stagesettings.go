package main

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/portico/portico/internal/status"
	"github.com/portico/portico/internal/store"
)

// useStageSettings makes `status` and `explain` agree with the nginx
// stage without repeating its flags: every flag of c that stands for one
// of the settings the stage published (status.SettingsFlags) and that was
// given neither on the command line nor in the environment takes the
// stage's value. A flag that was given wins; when it differs from the
// stage's value, a note says so. It returns the notes, for stderr.
func (c *command) useStageSettings(e env, st store.NginxSettings) ([]string, error) {
	given := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	stage := status.SettingsFlags(st)
	var notes []string
	for _, name := range slices.Sorted(maps.Keys(stage)) {
		f := c.fs.Lookup(name)
		if f == nil {
			continue
		}
		v := stage[name]
		if _, inEnv := e.lookup(envName(name)); e.lookup != nil && inEnv {
			given[name] = true
		}
		if given[name] {
			if f.Value.String() != v {
				notes = append(notes, fmt.Sprintf("--%s %q differs from the nginx stage %s's %q; using %q", name, f.Value.String(), status.Escape(st.Instance), status.Escape(v), f.Value.String()))
			}
			continue
		}
		if err := f.Value.Set(v); err != nil {
			return notes, fmt.Errorf("the nginx stage %s's %s %q: %w", status.Escape(st.Instance), name, status.Escape(v), err)
		}
	}
	return notes, nil
}

// stageSettings reads the nginx stages' published settings from entries
// into c's flags (useStageSettings) and writes the notes to stderr. It
// returns the settings used, if any stage published them.
func (c *command) stageSettings(e env, entries map[string]store.Entry, keys store.Keys, stderr io.Writer) (store.NginxSettings, bool, error) {
	st, ok, notes := status.StageSettings(entries, keys)
	if ok {
		more, err := c.useStageSettings(e, st)
		notes = append(notes, more...)
		if err != nil {
			return st, ok, err
		}
	}
	for _, n := range notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	return st, ok, nil
}
