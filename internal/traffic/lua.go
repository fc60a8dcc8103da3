package traffic

import (
	_ "embed"

	"github.com/portico/portico/internal/nginx/dynamic"
)

//go:embed portico_traffic.lua
var luaSource []byte

// LuaModule is the file name nginx requires as "portico_traffic".
const LuaModule = "portico_traffic.lua"

// WriteLua writes the Lua module into dir (dynamic.WriteModule).
func WriteLua(dir string) error { return dynamic.WriteModule(dir, LuaModule, luaSource) }
