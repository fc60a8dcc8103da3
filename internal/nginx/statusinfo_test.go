package nginx

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/portico/portico/internal/routing"
)

// The stage logs why each reload happened, and its status carries its
// listen addresses and when the config in place was applied; a restart
// that keeps the config reports the file's time, not the restart's.
func TestStageStatusListenAddressesAppliedAtAndWhy(t *testing.T) {
	h := startStage(t, true, nil)
	a := echoServer(t, "A")
	before := time.Now().Add(-time.Second)
	h.putContainer("a1", a, map[string]string{routing.LabelVhost: "app.test"})
	h.want("app.test", 200, "A host=app.test")
	h.logHas(`msg="nginx config applied"`, `why="1 route added: app.test"`)
	var applied time.Time
	h.eventually("status with listen addresses and applied_at", func() error {
		st := h.status()
		if !slices.Equal(st.HTTPAddrs, []string{h.http}) || !slices.Equal(st.HTTPSAddrs, []string{h.https}) {
			return fmt.Errorf("listen addresses %v %v, want %s %s", st.HTTPAddrs, st.HTTPSAddrs, h.http, h.https)
		}
		if st.Routes != 1 || st.AppliedAt.Before(before) || st.AppliedAt.After(time.Now()) {
			return fmt.Errorf("status %+v, want 1 route applied after %s", st, before)
		}
		applied = st.AppliedAt
		return nil
	})
	h.deleteKey(h.keys.Container("node1", "a1"))
	h.want("app.test", 404, "")
	h.logHas(`why="1 route removed: app.test"`)
	h.eventually("applied_at moves with the apply", func() error {
		if st := h.status(); !st.AppliedAt.After(applied) || st.Routes != 0 {
			return fmt.Errorf("status %+v, want applied after %s", st, applied)
		}
		return nil
	})
	fi, err := os.Stat(h.stage.applier.ConfPath)
	if err != nil {
		t.Fatal(err)
	}

	// A restart that finds the same config in place does not apply again:
	// applied_at is the file's time.
	h.restart(nil, func(c *Config) { c.HTTPSAddrs = []string{h.https} }, nil)
	h.want("unknown.test", 404, "")
	h.eventually("restarted stage's status", func() error {
		st := h.status()
		if !st.AppliedAt.Equal(fi.ModTime().UTC()) || !slices.Equal(st.HTTPAddrs, []string{h.http}) {
			return fmt.Errorf("status %+v, want applied_at %s (the file's mtime)", st, fi.ModTime().UTC())
		}
		return nil
	})
}
