package routing

import (
	"slices"
	"strings"

	"github.com/portico/portico/internal/siteopts"
)

// headerOptions reads portico.security-headers and the
// portico.response-header.<Name> and portico.request-header.<Name> labels
// (docs/labels.md, "Headers"). The header labels are read directly, not
// through lookup: an empty value is meaningful (it removes the header).
// Each bad name or value is an error naming the label; two labels whose
// names differ only in case, or more than siteopts.MaxHeaders of a kind,
// are errors too. Labels are read in key order, so the problems recorded
// under the bound are stable.
func (p *parser) headerOptions(o *siteopts.Options) {
	if s := p.lookup(label(LabelSecurityHeaders)); s.ok {
		on, err := parseBool(s.value)
		if err != nil {
			p.add(SeverityError, s.key, s.value, "%v", err)
		}
		o.Headers.Security = on
	}
	o.Headers.Response = p.headerLabels(LabelResponseHeader, false)
	o.Headers.Request = p.headerLabels(LabelRequestHeader, true)
}

func (p *parser) headerLabels(prefix string, request bool) []siteopts.Header {
	var keys []string
	for k := range p.c.Labels {
		if hasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	if len(keys) > siteopts.MaxHeaders {
		p.add(SeverityError, keys[siteopts.MaxHeaders], p.c.Labels[keys[siteopts.MaxHeaders]],
			"more than %d %s<Name> labels", siteopts.MaxHeaders, prefix)
		return nil
	}
	var out []siteopts.Header
	seen := map[string]string{}
	for _, k := range keys {
		name, v := k[len(prefix):], p.c.Labels[k]
		if err := siteopts.ParseHeaderName(name, request); err != nil {
			p.add(SeverityError, k, v, "%v", err)
			continue
		}
		if err := siteopts.ParseHeaderValue(v); err != nil {
			p.add(SeverityError, k, v, "%v", err)
			continue
		}
		l := strings.ToLower(name)
		if other, dup := seen[l]; dup {
			p.add(SeverityError, k, v, "header %s is also set by %s (header names ignore case)", name, other)
			continue
		}
		seen[l] = k
		out = append(out, siteopts.Header{Name: name, Value: v})
	}
	siteopts.SortHeaders(out)
	return out
}
