// Package siteopts holds the per-site options a container sets with labels
// (portico.max-body, portico.allow, portico.redirect-to, ...; every label
// name is in internal/routing/labels.go): their value types, their strict
// parsing, how two claimants' options compare, and how they travel to the
// dynamic path. It is pure: no I/O.
//
// routing reads each option's label (with its precedence and limits), parses
// the value with this package and puts the result in Service.Site; a Route
// carries its first claimant's Options, and a later claimant whose options
// differ is rejected for that vhost (first-claimant rule).
//
// On the dynamic path the options are trailing "name=value" fields after a
// route's fixed fields (internal/nginx/dynamic, Encode; portico.lua,
// OPTION_CHECK), one per option set, in Fields' order. On the static path the
// template reads Options from the vhost. The zero Options is "no option set"
// and costs nothing on either path.
package siteopts

import (
	"slices"
	"strings"
)

// Options are one site's per-site options. The zero value sets none. Each
// option is one field, added with its parser, its Fields entry and its Diff
// entry.
type Options struct {
	// Redirect: portico.redirect-from, -to, -code, -keep-path (redirect.go).
	Redirect Redirect
	// Headers: portico.security-headers, portico.response-header.<Name>,
	// portico.request-header.<Name> (headers.go).
	Headers Headers
	// Access: portico.allow, auth-file, max-body, timeouts, rate (access.go).
	Access
}

// Field is one option as the dynamic table carries it. Name is
// [a-z0-9-]+; Value was validated by the option's parser and never holds a
// tab, newline, carriage return or NUL (Encode checks again).
type Field struct {
	Name, Value string
}

// Fields returns the options that are set, as dynamic-table fields, in a
// fixed order (sorted by Name), so that the same options always encode to
// the same bytes.
func (o Options) Fields() []Field {
	var fs []Field
	fs = append(fs, o.Redirect.fields()...)
	fs = append(fs, o.Headers.fields()...)
	fs = append(fs, o.Access.fields()...)
	slices.SortFunc(fs, func(a, b Field) int { return strings.Compare(a.Name, b.Name) })
	return fs
}

// Diff names the first option whose value differs between o (a later
// claimant's) and owner (the vhost's first claimant's): its label and the two
// values as a person reads them. label is "" when they agree.
func (o Options) Diff(owner Options) (label, mine, theirs string) {
	if label, mine, theirs = o.Redirect.diff(owner.Redirect); label != "" {
		return label, mine, theirs
	}
	if label, mine, theirs = o.Headers.diff(owner.Headers); label != "" {
		return label, mine, theirs
	}
	if n, m, t := o.Access.diff(owner.Access); n != "" {
		return LabelPrefix + n, m, t
	}
	return "", "", ""
}

// LabelPrefix makes an option's label from its name: every option's label
// is "portico.<name>" (internal/routing/labels.go names each one).
const LabelPrefix = "portico."

// Equal reports whether o and p are the same options (reflect.DeepEqual's
// answer, without reflection: the nginx stage compares every route's
// options at each change). TestEqualCoversFields fails when a field is
// added and not compared here.
func (o Options) Equal(p Options) bool {
	r, q := o.Redirect, p.Redirect
	if r.To != q.To || r.Code != q.Code || r.KeepPath != q.KeepPath || r.Host != q.Host || !slices.Equal(r.From, q.From) {
		return false
	}
	if o.Headers.Security != p.Headers.Security || !slices.Equal(o.Headers.Response, p.Headers.Response) ||
		!slices.Equal(o.Headers.Request, p.Headers.Request) {
		return false
	}
	a, b := o.Access, p.Access
	return a.AuthFile == b.AuthFile && a.MaxBody == b.MaxBody && a.Timeout == b.Timeout && a.ConnectTimeout == b.ConnectTimeout &&
		a.Rate == b.Rate && a.Burst == b.Burst && slices.Equal(a.Allow, b.Allow) &&
		(a.Allow == nil) == (b.Allow == nil) && (r.From == nil) == (q.From == nil) &&
		(o.Headers.Response == nil) == (p.Headers.Response == nil) && (o.Headers.Request == nil) == (p.Headers.Request == nil)
}
