package render

import (
	"fmt"
	"path/filepath"

	"github.com/portico/portico/internal/siteopts"
)

// DynamicPaths places the dynamic path's files (docs/nginx.md). With them
// in Settings, the rendered config holds no route at all: one server
// answers every name from the table Portico pushes to the control socket.
type DynamicPaths struct {
	// LuaDir holds portico.lua.
	LuaDir string
	// StateFile is the table (and its certificates' files) nginx loads at
	// start and reload.
	StateFile string
	// ControlSocket is the control endpoint's unix socket; its directory
	// must be the owner's alone.
	ControlSocket string
	// FallbackCert and FallbackKey are the never-shown certificate the TLS
	// server needs at config time.
	FallbackCert, FallbackKey string
}

// NewDynamicPaths lays the files out under the nginx dir.
func NewDynamicPaths(dir string) DynamicPaths {
	d := filepath.Join(dir, "dynamic")
	return DynamicPaths{
		LuaDir:        filepath.Join(dir, "lua"),
		StateFile:     filepath.Join(d, "state.txt"),
		ControlSocket: filepath.Join(d, "control.sock"),
		FallbackCert:  filepath.Join(d, "fallback.crt"),
		FallbackKey:   filepath.Join(d, "fallback.key"),
	}
}

// dynamicView is what the template's "dynamic" block sees.
type dynamicView struct {
	DynamicPaths
	// RoutesZone and CertsZone size the shared dictionaries; nginx
	// touches only the pages it uses.
	RoutesZone, CertsZone string
	// ACMEZone holds the pending http-01 challenges (http01.MaxTokens of
	// at most about 450 bytes each).
	ACMEZone string
	// MaxPush bounds one push to the control endpoint.
	MaxPush     string
	GRPCSchemes []string
	// HeaderSchemes are the upstream schemes with a named location for
	// routes with response header options (@portico_h_<scheme>).
	HeaderSchemes []string
	// RatesZone sizes the rate-limit dictionary (access.go);
	// DefaultMaxBody and MaxBodyCeiling are siteopts' body limits in bytes.
	RatesZone                      string
	DefaultMaxBody, MaxBodyCeiling int64
}

// FastCGIRoot is the variable the Lua sets to a FastCGI route's document
// root before it continues in @portico_fastcgi.
func (view) FastCGIRoot() string { return "$portico_root" }

// Zone sizes: a route takes about 200 bytes with the dictionary's own
// overhead, a certificate 3 to 8 KB; 10,000 of each fit with room.
const (
	routesZone = "64m"
	certsZone  = "256m"
	acmeZone   = "2m"
	maxPush    = "64m"
)

func newDynamicView(p DynamicPaths) (*dynamicView, error) {
	for what, v := range map[string]string{"lua dir": p.LuaDir, "state file": p.StateFile, "control socket": p.ControlSocket,
		"fallback certificate": p.FallbackCert, "fallback key": p.FallbackKey} {
		if err := checkPath(what, v); err != nil {
			return nil, fmt.Errorf("dynamic path: %w", err)
		}
	}
	return &dynamicView{DynamicPaths: p, RoutesZone: routesZone, CertsZone: certsZone, ACMEZone: acmeZone, MaxPush: maxPush,
		GRPCSchemes: []string{"grpc", "grpcs"}, HeaderSchemes: []string{"http", "https"}, RatesZone: ratesZone,
		DefaultMaxBody: siteopts.DefaultMaxBody, MaxBodyCeiling: siteopts.MaxBodyCeiling}, nil
}
