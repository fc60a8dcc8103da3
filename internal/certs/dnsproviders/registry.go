// Package dnsproviders looks up lego DNS providers by name. It carries every
// provider of lego's list whose SDK resolves here (see gen.sh), so the user picks
// one by its lego code and configures it with that provider's own environment
// variables, as with lego's CLI.
package dnsproviders

import (
	"fmt"
	"sort"

	"github.com/go-acme/lego/v5/challenge"
)

// New builds the provider named code from its environment variables.
func New(code string) (challenge.Provider, error) {
	c, ok := constructors[code]
	if !ok {
		return nil, fmt.Errorf("dns provider %q: unknown (see `portico certs --help` for the list)", code)
	}
	p, err := c()
	if err != nil {
		return nil, fmt.Errorf("dns provider %q: %w", code, err)
	}
	return p, nil
}

// Codes lists the provider codes this build knows, sorted.
func Codes() []string {
	out := make([]string, 0, len(constructors))
	for k := range constructors {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
