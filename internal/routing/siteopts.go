package routing

import "github.com/portico/portico/internal/siteopts"

// siteOptions reads the per-site option labels (package siteopts) of the
// container. Each option: p.lookup its label (and any nginx-proxy env form),
// parse the value with siteopts, and p.add an error naming the label and
// value when it is bad; a bad option rejects the container, as any bad label
// does, and the other sites keep serving.
func (p *parser) siteOptions() siteopts.Options {
	var o siteopts.Options
	p.redirectOptions(&o)
	p.headerOptions(&o)
	o.Access = p.accessOptions()
	return o
}
