package nginx

import (
	"context"
	"fmt"
	"testing"

	"github.com/portico/portico/internal/nginx/dynamic"
	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/routing"
)

// After the first whole table, each change is pushed to nginx as a delta
// of its own size (issue 17): a route added, a route removed, a replica
// joining, a path prefix added and removed, a wildcard added; each is
// served as with a whole table, with no reload. A table nginx holds that
// is not the one the stage last sent (here a push from outside) makes the
// stage send the whole table again, and nginx refuses a delta made from
// another table, or one that would leave a path unlisted, and keeps what
// it serves.
func TestDynamicDeltaPush(t *testing.T) {
	h := startStage(t, false, nil)
	a, b := echoServer(t, "A"), echoServer(t, "B")
	for i := range 20 {
		h.putContainer(fmt.Sprint("c", i), a, map[string]string{routing.LabelVhost: fmt.Sprintf("app%d.test", i)})
	}
	h.want("app19.test", 200, "A host=app19.test")
	reloads := h.stage.Reloads()
	// No whole table need have been pushed yet: an nginx started after
	// the first sync loads the table from the state file.
	deltas0, _, _ := h.stage.pusher.Counts()

	// Each change: served, and pushed as a delta no bigger than a few lines.
	change := func(what string, do func(), host string, code int, body string) {
		t.Helper()
		_, fullsBefore, _ := h.stage.pusher.Counts()
		do()
		h.want(host, code, body)
		h.eventually(what+" pushed as a delta", func() error {
			deltas, fulls, size := h.stage.pusher.Counts()
			switch {
			case fulls != fullsBefore:
				return fmt.Errorf("%s: a whole table was pushed (%d -> %d)", what, fullsBefore, fulls)
			case deltas == deltas0:
				return fmt.Errorf("%s: no delta yet", what)
			case size > 600:
				return fmt.Errorf("%s: last push %d bytes", what, size)
			}
			return nil
		})
	}
	change("a new route", func() {
		h.putContainer("new", b, map[string]string{routing.LabelVhost: "new.test"})
	}, "new.test", 200, "B host=new.test")
	change("a route removed", func() { h.deleteKey(h.keys.Container("node1", "c3")) }, "app3.test", 404, "")
	change("a replica joins", func() {
		h.putContainer("c5b", b, map[string]string{routing.LabelVhost: "app5.test"})
	}, "app5.test", 200, "")
	h.eventually("both replicas of app5.test", func() error {
		seen, err := h.seenNames("app5.test", 10)
		if err == nil && (seen["A"] == 0 || seen["B"] == 0) {
			err = fmt.Errorf("seen %v", seen)
		}
		return err
	})
	change("a path prefix", func() {
		h.putContainer("api", b, map[string]string{routing.LabelVhost: "app7.test", routing.LabelPath: "/api/"})
	}, "app7.test", 200, "A host=app7.test")
	h.eventually("the path served by its container", func() error {
		c, body, err := h.getPath("app7.test", "/api/x")
		if err == nil && (c != 200 || body[:1] != "B") {
			err = fmt.Errorf("got %d %q", c, body)
		}
		return err
	})
	change("the path removed", func() { h.deleteKey(h.keys.Container("node1", "api")) }, "app7.test", 200, "A host=app7.test")
	h.eventually("the path served by the root again", func() error {
		c, body, err := h.getPath("app7.test", "/api/x")
		if err == nil && (c != 200 || body[:1] != "A") {
			err = fmt.Errorf("got %d %q", c, body)
		}
		return err
	})
	change("a wildcard", func() {
		h.putContainer("wild", b, map[string]string{routing.LabelVhost: "*.wild.test"})
	}, "x.wild.test", 200, "B host=x.wild.test")
	if got := h.stage.Reloads(); got != reloads {
		t.Errorf("reloads %d -> %d", reloads, got)
	}

	// A push from outside: nginx holds a table the stage did not send.
	ctl := dynamic.NewControl(render.NewDynamicPaths(h.dir).ControlSocket)
	defer ctl.Close()
	ctx := context.Background()
	if err := ctl.PutRoutes(ctx, []byte("portico-routes 1\nversion\tforeign\nroute\tforeign.test\thttp\t0\t0\t\t127.0.0.1:1\n")); err != nil {
		t.Fatal(err)
	}
	h.want("app0.test", 404, "")
	_, fulls1, _ := h.stage.pusher.Counts()
	h.putContainer("after", a, map[string]string{routing.LabelVhost: "after.test"})
	h.want("after.test", 200, "A host=after.test")
	h.want("app0.test", 200, "A host=app0.test")
	h.want("foreign.test", 404, "")
	if _, fulls, _ := h.stage.pusher.Counts(); fulls == fulls1 {
		t.Error("the whole table was not pushed to an nginx holding another one")
	}

	// Deltas nginx refuses, and what it serves stays.
	_, version, err := ctl.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hdr := "portico-delta 1\nbase\t" + version + "\nversion\tv2\nredirect_port\t\ndefault\t\n"
	for name, body := range map[string]string{
		"another base":     "portico-delta 1\nbase\tnot-the-table\nversion\tv2\nroute\tevil.test\thttp\t0\t0\t\t127.0.0.1:1\n",
		"no version":       "portico-delta 1\nbase\t" + version + "\nroute\tevil.test\thttp\t0\t0\t\t127.0.0.1:1\n",
		"bad route":        hdr + "route\tevil test\thttp\t0\t0\t\t127.0.0.1:1\n",
		"unknown kind":     hdr + "exec\tx\n",
		"path unlisted":    hdr + "path\tapp0.test\t/a\thttp\t0\t0\t\t127.0.0.1:1\n",
		"listed, no line":  hdr + "route\tevil.test\thttp\t0\t0\t\t127.0.0.1:1\tpath-list=/a\n",
		"set and deleted":  hdr + "route\tapp0.test\thttp\t0\t0\t\t127.0.0.1:1\ndelroute\tapp0.test\n",
		"bad dropcert":     hdr + "dropcert\t../x\n",
		"bad delete":       hdr + "delroute\tevil test\n",
		"then a bad line":  hdr + "route\tevil.test\thttp\t0\t0\t\t127.0.0.1:1\nroute\tx\n",
		"partial version":  "portico-delta 1\nbase\t" + version + "\nversion\tpartial\n",
		"not a delta":      "portico-routes 1\n",
		"a whole table in": "portico-delta 1\nbase\t" + version + "\nversion\tv2\nversion\tv3\nroute\tevil.test\tfile\t0\t0\t\t127.0.0.1:1\n",
	} {
		if err := ctl.PutDelta(ctx, []byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, after, err := ctl.State(ctx); err != nil || after != version {
		t.Errorf("table version %q -> %q (%v): a refused delta changed it", version, after, err)
	}
	h.want("app0.test", 200, "A host=app0.test")
	h.want("evil.test", 404, "")
}
