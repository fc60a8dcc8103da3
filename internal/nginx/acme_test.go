package nginx

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/portico/portico/internal/http01"
	"github.com/portico/portico/internal/nginx/dynamic"
	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

const (
	acmeTok   = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
	acmeThumb = "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
)

func (h *harness) getACME(host, path string) (int, string, error) {
	req, _ := http.NewRequest("GET", "http://"+h.http+path, nil)
	req.Host = host
	resp, err := noRedirect.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func (h *harness) putJSON(key string, v any) {
	h.t.Helper()
	b, _ := json.Marshal(v)
	if _, err := h.etcd.Client.Put(context.Background(), key, string(b)); err != nil {
		h.t.Fatal(err)
	}
}

// TestACMEChallengeServedBeforeAnythingElse, on both paths: a held token
// is answered for its Host, routed or not, redirecting or not, and a
// container never sees it; any other token goes to the container; a record
// for a name not wanted by ACME is not answered; a deleted token is gone;
// the stage acknowledges what it serves.
func TestACMEChallengeServedBeforeAnythingElse(t *testing.T) {
	for _, dyn := range []bool{true, false} {
		t.Run(fmt.Sprintf("dynamic=%v", dyn), func(t *testing.T) {
			t.Parallel()
			// nginx's workers run as another user here: the static path's
			// challenge files must be in a directory they may enter.
			acmeDir, err := os.MkdirTemp("", "portico-acme-test-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(acmeDir) })
			if err := os.Chmod(acmeDir, 0o755); err != nil {
				t.Fatal(err)
			}
			h := startStage(t, true, func(c *Config) { c.Dynamic, c.ACMEDir = dyn, acmeDir })
			a := echoServer(t, "A")
			routed, unrouted, other := "www.example.org", "new.example.org", "victim.example.org"
			h.putContainer("a1", a, map[string]string{routing.LabelVhost: routed, routing.LabelHTTPS: "redirect"})
			h.want(routed, 200, "A host="+routed)
			h.putJSON(h.keys.CertsWanted(), []store.WantedCert{
				{Primary: routed, Names: []string{routed}, Issuer: store.IssuerACME},
				{Primary: unrouted, Names: []string{unrouted}, Issuer: store.IssuerACME},
				{Primary: "local.test", Names: []string{"local.test", other}, Issuer: store.IssuerLocal},
			})
			ka := acmeTok + "." + acmeThumb
			tok2 := strings.Repeat("Z", 43)
			h.putJSON(h.keys.HTTP01Token(acmeTok), http01.Record{Token: acmeTok, KeyAuth: ka, Domain: routed})
			h.putJSON(h.keys.HTTP01Token(tok2), http01.Record{Token: tok2, KeyAuth: tok2 + "." + acmeThumb, Domain: unrouted})
			tok3 := strings.Repeat("Y", 43)
			h.putJSON(h.keys.HTTP01Token(tok3), http01.Record{Token: tok3, KeyAuth: tok3 + "." + acmeThumb, Domain: other})
			h.eventually("held tokens answered", func() error {
				for _, c := range [][3]string{{routed, acmeTok, ka}, {unrouted, tok2, tok2 + "." + acmeThumb}} {
					code, body, err := h.getACME(c[0], http01.PathPrefix+c[1])
					if err != nil || code != 200 || body != c[2] {
						return fmt.Errorf("%s: %d %q %v", c[0], code, body, err)
					}
				}
				return nil
			})
			// Everything else: as any other path (the route's container,
			// which answers every path with "A ..."; no route: 404).
			for _, c := range []struct {
				host, path string
				code       int
			}{
				{routed, http01.PathPrefix + strings.Repeat("Q", 43), 200},
				{routed, http01.PathPrefix + tok2, 200},      // another Host's token
				{other, http01.PathPrefix + tok3, 404},       // not wanted by ACME
				{unrouted, http01.PathPrefix + "short", 404}, // not a token
				{unrouted, "/.portico-acme/" + unrouted + "/" + tok2, 404},
			} {
				code, body, err := h.getACME(c.host, c.path)
				if err != nil || code != c.code || code == 200 && !strings.HasPrefix(body, "A ") {
					t.Errorf("%s%s: %d %q %v, want %d", c.host, c.path, code, body, err, c.code)
				}
			}
			var s http01.Served
			h.eventually("acknowledged", func() error {
				resp, err := h.etcd.Client.Get(context.Background(), h.keys.HTTP01ServedBy("test"))
				if err != nil || len(resp.Kvs) != 1 {
					return fmt.Errorf("no ack: %v", err)
				}
				if err := json.Unmarshal(resp.Kvs[0].Value, &s); err != nil || len(s.Tokens) != 2 || resp.Kvs[0].Lease == 0 {
					return fmt.Errorf("ack %s", resp.Kvs[0].Value)
				}
				return nil
			})
			h.deleteKey(h.keys.HTTP01Token(acmeTok))
			h.eventually("deleted token no longer answered", func() error {
				if code, body, err := h.getACME(routed, http01.PathPrefix+acmeTok); err != nil || code != 200 || !strings.HasPrefix(body, "A ") {
					return fmt.Errorf("%d %q %v", code, body, err)
				}
				return nil
			})
		})
	}
}

// TestACMEHTTPSiteUnheldTokenReachesContainer: without a redirect, a token
// Portico does not hold is proxied like any path.
func TestACMEHTTPSiteUnheldTokenReachesContainer(t *testing.T) {
	h := startStage(t, false, nil)
	a := echoServer(t, "A")
	h.putContainer("a1", a, map[string]string{routing.LabelVhost: "app.example.org"})
	h.want("app.example.org", 200, "A host=app.example.org")
	if code, body, err := h.getACME("app.example.org", http01.PathPrefix+acmeTok); err != nil || code != 200 || !strings.HasPrefix(body, "A ") {
		t.Errorf("%d %q %v: want the container's answer", code, body, err)
	}
}

func TestDynamicControlRefusesGarbageChallenges(t *testing.T) {
	h := startStage(t, false, nil)
	h.want("nothing.example", 404, "")
	ctl := dynamic.NewControl(render.NewDynamicPaths(h.dir).ControlSocket)
	defer ctl.Close()
	ka := acmeTok + "." + acmeThumb
	for name, body := range map[string]string{
		"no header":      acmeTok + "\ta.example\t" + ka + "\n",
		"short token":    "portico-acme 1\nabc\ta.example\tabc." + acmeThumb + "\n",
		"token path":     "portico-acme 1\n../" + acmeTok + "\ta.example\t../" + ka + "\n",
		"bad domain":     "portico-acme 1\n" + acmeTok + "\tA B;\t" + ka + "\n",
		"other key auth": "portico-acme 1\n" + acmeTok + "\ta.example\tx" + ka[1:] + "\n",
		"html key auth":  "portico-acme 1\n" + acmeTok + "\ta.example\t" + acmeTok + ".<script>alert(1)</script>xxxxxxxxxxxxxxx\n",
		"missing field":  "portico-acme 1\n" + acmeTok + "\ta.example\n",
		"extra field":    "portico-acme 1\n" + acmeTok + "\ta.example\t" + ka + "\tx\n",
	} {
		if err := ctl.PutACME(context.Background(), []byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := ctl.PutACME(context.Background(), []byte("portico-acme 1\n"+acmeTok+"\ta.example\t"+ka+"\n")); err != nil {
		t.Errorf("good body refused: %v", err)
	}
}
