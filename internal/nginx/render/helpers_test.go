package render

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/testenv/certtest"
)

const nginxBin = "/usr/sbin/nginx"

// selfSigned makes a certificate bundle for names with the given serial.
func selfSigned(t testing.TB, serial int64, names ...string) store.CertBundle {
	return certtest.SelfSigned(t, serial, names...)
}

// nginxTestConf runs `nginx -t` on conf under a generated main config in a
// temporary prefix and returns nginx's output and error.
func nginxTestConf(t testing.TB, conf []byte) (string, error) {
	t.Helper()
	dir := t.TempDir()
	inc := filepath.Join(dir, "portico.conf")
	if err := os.WriteFile(inc, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	mainPath := filepath.Join(dir, "nginx.conf")
	if err := (MainConf{Prefix: dir, Include: inc}).Install(mainPath); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginxBin, "-t", "-q", "-p", dir, "-c", mainPath, "-g", "daemon off;").CombinedOutput()
	return string(out), err
}

// hash keys the configs nginx -t already accepted: the stage's nginx.Hash,
// which this package's tests cannot import.
func hash(conf []byte) string {
	h := sha256.Sum256(conf)
	return hex.EncodeToString(h[:])
}
