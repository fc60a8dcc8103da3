package routing

import (
	"cmp"
	"fmt"
	"slices"
	"unicode/utf8"
)

// Bounds that keep the cost of any record linear in its size and small in
// absolute terms (docs/labels.md, "Limits").
const (
	// MaxNames is the most distinct names one host list (vhosts, or
	// LETSENCRYPT_HOST/ACME_HOST) may hold: Let's Encrypt's limit of names
	// per certificate.
	MaxNames = 100
	// MaxListBytes bounds a host-list value: room for MaxNames names of 253
	// bytes with a wildcard prefix and a separator each, rounded up.
	MaxListBytes = 32 << 10
	// MaxValueBytes bounds every other value Portico reads.
	MaxValueBytes = 4 << 10
	// MaxProblems is how many problems are recorded per container; the rest
	// are counted in one summary problem (Problem.More).
	MaxProblems = 10
	// maxItemBytes is how much of an offending value a problem keeps.
	maxItemBytes = 128
	// maxNameBytes bounds the identity fields of a problem (container name,
	// id, node): longer than any valid one, far shorter than a hostile one.
	maxNameBytes = 256
)

// isListKey reports whether values under key are host lists.
func isListKey(key string) bool {
	switch key {
	case LabelVhost, LegacyVhost, EnvVirtualHost, EnvLetsEncryptHost, EnvACMEHost, LabelRedirectFrom:
		return true
	}
	return false
}

// valueLimit is the largest value accepted under key.
func valueLimit(key string) int {
	if isListKey(key) {
		return MaxListBytes
	}
	return MaxValueBytes
}

// clip returns the longest prefix of s of at most n bytes that does not cut
// a UTF-8 sequence, and whether it cut anything. Invalid bytes in s are kept
// as they are (they print escaped).
func clip(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	i := n
	// s[n] is the first byte cut; if it continues a sequence, cut that
	// sequence whole (at most 3 bytes back).
	for k := 0; k < utf8.UTFMax-1 && i > 0 && !utf8.RuneStart(s[i]); k++ {
		i--
	}
	return s[:i], true
}

// clipped is clip for message text: a cut string ends in "…".
// Clip cuts s to at most n bytes at a UTF-8 boundary and marks a cut with
// "…": how every stored or shown value from a hostile input is bounded.
func Clip(s string, n int) string {
	c, cut := clip(s, n)
	if cut {
		return c + "…"
	}
	return c
}

// newProblem builds a Problem that holds at most maxItemBytes of value and
// label and maxNameBytes of each identity field.
func newProblem(sev Severity, id, container, node, label, value, msg string) Problem {
	p := Problem{
		Severity:    sev,
		ContainerID: Clip(id, maxNameBytes),
		Container:   Clip(container, maxNameBytes),
		Node:        Clip(node, maxNameBytes),
		Label:       Clip(label, maxItemBytes),
		Message:     msg,
	}
	var cut bool
	if p.Value, cut = clip(value, maxItemBytes); cut {
		p.ValueBytes = len(value)
	}
	return p
}

// limitProblems keeps at most MaxProblems problems per container (node, id,
// name), errors first, and folds the rest, with any earlier summaries, into
// one summary problem per container that counts them. ps must be sorted by
// sortProblems; the result is too.
func limitProblems(ps []Problem) []Problem {
	type key struct{ node, id, name string }
	type group struct {
		kept, more int
		err        bool // an error was folded
	}
	groups := map[key]*group{}
	g := func(p Problem) *group {
		k := key{p.Node, p.ContainerID, p.Container}
		if groups[k] == nil {
			groups[k] = &group{}
		}
		return groups[k]
	}
	over := false
	for _, p := range ps {
		gr := g(p)
		if p.More > 0 || gr.kept == MaxProblems {
			over = true
		}
		if p.More == 0 {
			gr.kept++
		}
	}
	if !over {
		return ps
	}
	clear(groups)
	keep := make([]bool, len(ps))
	for _, errorsPass := range []bool{true, false} {
		for i, p := range ps {
			if (p.Severity == SeverityError) != errorsPass {
				continue
			}
			gr := g(p)
			switch {
			case p.More > 0:
				gr.more += p.More
				gr.err = gr.err || p.Severity == SeverityError
			case gr.kept < MaxProblems:
				gr.kept++
				keep[i] = true
			default:
				gr.more++
				gr.err = gr.err || p.Severity == SeverityError
			}
		}
	}
	out := make([]Problem, 0, min(len(ps), len(groups)*(MaxProblems+1)))
	summarized := map[key]bool{}
	for i, p := range ps {
		if keep[i] {
			out = append(out, p)
			continue
		}
		k := key{p.Node, p.ContainerID, p.Container}
		if gr := groups[k]; gr.more > 0 && !summarized[k] {
			summarized[k] = true
			sev := SeverityWarning
			if gr.err {
				sev = SeverityError
			}
			out = append(out, Problem{Severity: sev, ContainerID: p.ContainerID, Container: p.Container, Node: p.Node,
				Message: fmt.Sprintf("%d more problems not recorded (at most %d per container)", gr.more, MaxProblems), More: gr.more})
		}
	}
	sortProblems(out)
	return out
}

// sortProblems orders problems by container name, node, label and message,
// then by the remaining fields so the order is total. A container's summary
// (More > 0) comes after its other problems.
func sortProblems(ps []Problem) {
	slices.SortFunc(ps, func(a, b Problem) int {
		return cmp.Or(
			cmp.Compare(a.Container, b.Container),
			cmp.Compare(a.Node, b.Node),
			cmp.Compare(a.More, b.More),
			cmp.Compare(a.Label, b.Label),
			cmp.Compare(a.Message, b.Message),
			cmp.Compare(a.ContainerID, b.ContainerID),
			cmp.Compare(a.Severity, b.Severity),
			cmp.Compare(a.Value, b.Value),
			cmp.Compare(a.ValueBytes, b.ValueBytes),
		)
	})
}
