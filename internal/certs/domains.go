package certs

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/portico/portico/internal/store"
)

// MaxDomainsFileBytes bounds a domains file the stage will read.
const MaxDomainsFileBytes = 1 << 20

// ParseDomains reads dehydrated's domains.txt format: one certificate per
// line, `primary alt1 alt2`, names separated by spaces or tabs. Everything
// after `#` is a comment; blank lines are skipped. A `> alias` suffix is
// ignored (dehydrated's certificate directory name; Portico names bundles by
// their primary), with a warning unless the line is a wildcard, for which
// dehydrated requires one. A line with an invalid name is skipped whole with
// a warning naming the line, so one typo never changes another certificate.
// Names are returned normalised (see NormalizeName), duplicates dropped.
func ParseDomains(file string, data []byte) (sets [][]string, warnings []string) {
	if len(data) > MaxDomainsFileBytes {
		return nil, []string{fmt.Sprintf("%s: %d bytes exceed the limit of %d; ignored", file, len(data), MaxDomainsFileBytes)}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxDomainsFileBytes+1)
	n := 0
	for sc.Scan() {
		n++
		line, _, _ := strings.Cut(sc.Text(), "#")
		line, alias, hasAlias := strings.Cut(line, ">")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			if hasAlias {
				warnings = append(warnings, fmt.Sprintf("%s line %d: alias without names; ignored", file, n))
			}
			continue
		}
		var names []string
		var bad error
		for _, f := range fields {
			name, err := NormalizeName(f)
			if err != nil {
				bad = err
				break
			}
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
		if bad != nil {
			warnings = append(warnings, fmt.Sprintf("%s line %d: %v; line skipped", file, n, bad))
			continue
		}
		if hasAlias && !strings.HasPrefix(names[0], "*.") {
			warnings = append(warnings, fmt.Sprintf("%s line %d: alias %q ignored; the certificate is named %q", file, n, strings.TrimSpace(alias), names[0]))
		}
		sets = append(sets, names)
	}
	if err := sc.Err(); err != nil {
		warnings = append(warnings, fmt.Sprintf("%s line %d: %v; rest of file ignored", file, n+1, err))
	}
	return sets, warnings
}

// FormatDomains renders certificates in dehydrated's domains.txt format,
// one `primary alt1 alt2` line each. A wildcard certificate gets the
// `> star_example_com` alias dehydrated requires for wildcards.
func FormatDomains(certs []store.WantedCert) []byte {
	var b bytes.Buffer
	b.WriteString("# Written by portico's certs stage; edits are overwritten.\n")
	for _, c := range certs {
		b.WriteString(strings.Join(c.Names, " "))
		if d, ok := strings.CutPrefix(c.Primary, "*."); ok {
			b.WriteString(" > star_" + strings.NewReplacer(".", "_", "-", "_").Replace(d))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}
