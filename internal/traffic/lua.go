package traffic

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"

	"github.com/portico/portico/internal/atomicfile"
)

//go:embed portico_traffic.lua
var luaSource []byte

// LuaModule is the file name nginx requires as "portico_traffic".
const LuaModule = "portico_traffic.lua"

// WriteLua writes the Lua module into dir (created 0755: nginx's master
// loads it before its workers start), unless it is there already.
func WriteLua(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lua dir %s: %w", dir, err)
	}
	p := filepath.Join(dir, LuaModule)
	if old, err := os.ReadFile(p); err == nil && string(old) == string(luaSource) {
		return nil
	}
	if err := atomicfile.Write(p, luaSource, 0o644); err != nil {
		return fmt.Errorf("traffic lua module: %w", err)
	}
	return nil
}
