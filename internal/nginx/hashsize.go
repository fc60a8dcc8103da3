package nginx

import (
	"fmt"
	"regexp"
	"strings"
)

// External mode and the hash sizes (docs/nginx.md, "External mode").
//
// nginx builds a hash of the server names of each listen address with more
// than one server, and one per map, whose buckets must hold the longest
// name. The defaults (server_names_hash_bucket_size and map_hash_bucket_size
// of one CPU cache line, 64 bytes here) refuse a name of about 50 bytes, and
// a distribution's stock nginx.conf leaves them at that (Debian's has
// "# server_names_hash_bucket_size 64;" commented out). These directives
// are valid in http {}, where the generated file is included, and nginx
// reads them once the whole http {} block is parsed; but one set twice is
// "directive is duplicate". So in external mode the Applier writes them at
// the top of the generated file, and leaves out each one that nginx -t says
// the system's config already sets; if that one is then too small for the
// names, the error says what to change where.

// hashDirective is one hash size the generated file sets in external mode,
// with the value the supervised main config uses (mainconf.go).
type hashDirective struct{ name, value string }

var hashDirectives = []hashDirective{
	{"server_names_hash_bucket_size", "512"},
	{"server_names_hash_max_size", "131072"},
	{"map_hash_bucket_size", "512"},
	{"map_hash_max_size", "131072"},
}

// hashPreamble is the block of hash sizes written before the generated
// config, without the directives in omit.
func hashPreamble(omit map[string]bool) []byte {
	var b strings.Builder
	b.WriteString("# Hash sizes for long host names (Portico, external mode; a directive the\n# main config sets itself is left out).\n")
	for _, d := range hashDirectives {
		if !omit[d.name] {
			fmt.Fprintf(&b, "%s %s;\n", d.name, d.value)
		}
	}
	return []byte(b.String())
}

var (
	duplicateRE = regexp.MustCompile(`"([a-z_]+)" directive is duplicate`)
	tooSmallRE  = regexp.MustCompile(`could not build ([a-z_]+), you should increase (?:either ([a-z_]+): \d+ or )?([a-z_]+): \d+`)
)

// duplicateHash returns the hash directive that nginx -t output reports as
// duplicate, or "".
func duplicateHash(output string) string {
	m := duplicateRE.FindStringSubmatch(output)
	if m == nil {
		return ""
	}
	for _, d := range hashDirectives {
		if d.name == m[1] {
			return d.name
		}
	}
	return ""
}

// hashTooSmall returns the hash directives nginx -t output says to
// increase (nil: no such error).
func hashTooSmall(output string) []string {
	m := tooSmallRE.FindStringSubmatch(output)
	if m == nil {
		return nil
	}
	var names []string
	for _, n := range m[2:] {
		if n != "" {
			names = append(names, n)
		}
	}
	return names
}

// hashHint says what to change when a hash size left to the main config is
// too small: the directives of names that are omitted, with the values
// Portico would set. "" when none of them is Portico's to name.
func hashHint(names []string, omit map[string]bool, mainConf, confPath string) string {
	var set []string
	for _, n := range names {
		if !omit[n] {
			continue
		}
		for _, d := range hashDirectives {
			if d.name == n {
				set = append(set, fmt.Sprintf("%q", d.name+" "+d.value+";"))
			}
		}
	}
	if len(set) == 0 {
		return ""
	}
	if mainConf == "" {
		mainConf = "nginx's main config"
	}
	return fmt.Sprintf("the system's nginx config (%s or a file it includes) sets a hash size too small for these host names: set %s in its http {} block, or remove the directive there and Portico sets it in %s",
		mainConf, strings.Join(set, " and "), confPath)
}
