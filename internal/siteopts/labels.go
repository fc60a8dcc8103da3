package siteopts

// The labels of this package's redirect and header options, as Diff names
// them. internal/routing/labels.go is where every label is defined; this
// package cannot import it (routing imports siteopts), so these repeat its
// names and routing's TestSiteoptsLabelsMatch checks that they agree.
const (
	LabelRedirectFrom     = "portico.redirect-from"
	LabelRedirectTo       = "portico.redirect-to"
	LabelRedirectCode     = "portico.redirect-code"
	LabelRedirectKeepPath = "portico.redirect-keep-path"
	LabelSecurityHeaders  = "portico.security-headers"
	LabelResponseHeader   = "portico.response-header." // + header name
	LabelRequestHeader    = "portico.request-header."  // + header name
)
