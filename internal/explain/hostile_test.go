package explain

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// TestHostileRecordsDoNotReachTheTerminal: records written straight into
// etcd with terminal escapes, bidi overrides, injected line breaks and URL
// credentials print escaped (text) or as escaped JSON strings, and no
// secret is printed.
func TestHostileRecordsDoNotReachTheTerminal(t *testing.T) {
	const secret = "s3cr3t-token"
	bad := "\x1b]0;owned\x07\r\nFAKE LINE\u202egnp.exe\u009b31m\x7f\u2066"
	for _, host := range []string{"web.test", "x\x1b[31m.test\nFAKE LINE", "bad.test"} {
		w := newWorld(t)
		w.container("c1", "web", map[string]string{routing.LabelVhost: "web.test", routing.LabelPort: "80", "portico.x" + bad: bad},
			func(c *store.Container) { c.Image, c.State, c.Health = bad, "running", "healthy"+bad })
		w.container("c2", "bad", map[string]string{routing.LabelVhost: "bad.test, x" + bad + ".test", routing.LabelPort: bad})
		w.put(keys.Container("h1", "c3"), store.Container{ID: "c3", Name: "web" + bad, Host: "h1", State: "running",
			Labels: map[string]string{routing.LabelVhost: "web.test"}})
		w.put(keys.NginxStatus("n1"+bad), store.NginxStatus{Instance: "n1" + bad, Applied: "ab" + bad, Routes: 1,
			Error: "nginx -t failed" + bad + " at http://admin:" + secret + "@127.0.0.1:9/x?token=" + secret, ErrorRoutes: []string{"web.test"}})
		w.put(keys.CertState("web.test"), store.CertState{Primary: "web.test", Names: []string{"web.test"}, Issuer: "acme" + bad,
			LastError: "POST https://user:" + secret + "@dns.example/present?key=" + secret + bad})
		w.put(keys.CertsWanted(), []store.WantedCert{{Primary: "web.test", Names: []string{"web.test"}, Issuer: "local"}})
		w.raw(keys.Container("h1", "junk"+bad), "{not json"+bad)
		x := w.explain(host, proxy)
		var text, js bytes.Buffer
		if err := x.WriteText(&text, now); err != nil {
			t.Fatal(err)
		}
		if err := x.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		if testing.Verbose() {
			t.Logf("%q text:\n%s", host, text.String())
		}
		for mode, out := range map[string]string{"text": text.String(), "json": js.String()} {
			for _, raw := range []string{"\x1b", "\r", "\x07", "\x7f", "\u202e", "\u2066", "\u009b", secret} {
				if strings.Contains(out, raw) {
					t.Errorf("%q %s output holds %q", host, mode, raw)
				}
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "FAKE") {
					t.Errorf("%q %s output has an injected line %q", host, mode, line)
				}
			}
		}
		var back Explanation
		if err := json.Unmarshal(js.Bytes(), &back); err != nil {
			t.Fatalf("JSON does not parse: %v", err)
		}
		if host == "web.test" && !strings.Contains(text.String(), `web\x1b]0;owned\x07\r\nFAKE LINE\u202egnp.exe`) {
			t.Errorf("text lacks the escaped container name:\n%s", text.String())
		}
	}
}
