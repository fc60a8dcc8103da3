package dynamic

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"

	"github.com/portico/portico/internal/atomicfile"
)

//go:embed portico.lua
var luaSource []byte

// LuaModule is the file name nginx requires as "portico".
const LuaModule = "portico.lua"

// WriteLua writes the Lua module into dir (WriteModule).
func WriteLua(dir string) error { return WriteModule(dir, LuaModule, luaSource) }

// WriteModule writes a Lua module's source into dir/name, unless it is
// there already (dir created 0755: nginx's master loads it before its
// workers start).
func WriteModule(dir, name string, src []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lua dir %s: %w", dir, err)
	}
	p := filepath.Join(dir, name)
	if old, err := os.ReadFile(p); err == nil && string(old) == string(src) {
		return nil
	}
	if err := atomicfile.Write(p, src, 0o644); err != nil {
		return fmt.Errorf("lua module %s: %w", name, err)
	}
	return nil
}
