package e2e

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/testenv/dockertest"
)

// TestUITrafficChartsInBrowser drives traffic at two sites and watches the
// operators' page chart both, busiest first, live; a third site whose
// replica refuses connections stands out. The Prometheus endpoint exports
// the same counts with the site as a label. Screenshots (desktop, phone)
// go to the artifact dir.
func TestUITrafficChartsInBrowser(t *testing.T) {
	t.Parallel()
	d := dockertest.New(t)
	net := d.Network(t, "traffic")
	uiAddr := addr(freePort(t))
	p := startRun(t, d, net, "--ui-addr", uiAddr)

	busy, quiet, broken := "busy-"+d.RunID+".test", "quiet-"+d.RunID+".test", "broken-"+d.RunID+".test"
	d.Run(t, dockertest.RunOptions{Name: "busy", Network: net, Labels: map[string]string{"portico.vhost": busy}})
	d.Run(t, dockertest.RunOptions{Name: "quiet", Network: net, Labels: map[string]string{"portico.vhost": quiet}})
	// A port nothing listens on: every request is a connect failure (502).
	d.Run(t, dockertest.RunOptions{Name: "broken", Network: net, Labels: map[string]string{"portico.vhost": broken, "portico.port": "81"}})
	for _, h := range []string{busy, quiet} {
		eventually(t, 20*time.Second, h+" served", func() error { return expect200(p.http, h, "") })
	}

	b := startBrowser(t)
	b.navigate(t, "http://"+uiAddr+"/")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // traffic until the checks are done: 4:1, plus the broken site
		defer close(done)
		pace := time.NewTicker(20 * time.Millisecond) // the load's rate
		defer pace.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-pace.C:
			}
			get(p.http, busy)
			if i%4 == 0 {
				get(p.http, quiet)
			}
			if i%10 == 0 {
				get(p.http, broken)
			}
		}
	}()
	defer func() { close(stop); <-done }()

	var cards []struct {
		Site     string `json:"site"`
		Points   int    `json:"points"`
		Alert    bool   `json:"alert"`
		Canvases int    `json:"canvases"`
		Stats    string `json:"stats"`
	}
	eventually(t, 60*time.Second, "both sites charted with traffic", func() error {
		if err := b.eval(`[...document.querySelectorAll("#traffic .site")].map((c) => ({site: c.dataset.site,
			points: +c.dataset.points, alert: c.classList.contains("alert"),
			canvases: c.querySelectorAll("canvas").length, stats: c.querySelector(".stats").textContent}))`, &cards); err != nil {
			return err
		}
		pos := map[string]int{}
		for i, c := range cards {
			pos[c.Site] = i + 1
			if (c.Site == busy || c.Site == quiet) && (c.Points < 1 || c.Canvases < 2) {
				return fmt.Errorf("%s: %d points, %d charts", c.Site, c.Points, c.Canvases)
			}
		}
		if pos[busy] == 0 || pos[quiet] == 0 || pos[broken] == 0 {
			return fmt.Errorf("cards %+v", cards)
		}
		if pos[busy] > pos[quiet] {
			return fmt.Errorf("%s (busier) after %s: %+v", busy, quiet, cards)
		}
		for _, c := range cards {
			if c.Site == broken && (!c.Alert || !strings.Contains(c.Stats, "5xx")) {
				return fmt.Errorf("the broken site does not stand out: %+v", c)
			}
		}
		return nil
	})
	for _, c := range cards {
		if (c.Site == busy || c.Site == quiet) && c.Alert {
			t.Errorf("a healthy site stands out: %+v", c)
		}
	}
	var noReload bool
	if err := b.eval(`(window.__porticoNoReload = true)`, &noReload); err != nil {
		t.Fatal(err)
	}
	// Live: the point count grows without a reload.
	first := map[string]int{}
	for _, c := range cards {
		first[c.Site] = c.Points
	}
	eventually(t, 30*time.Second, "charts update live", func() error {
		var n int
		if err := b.eval(fmt.Sprintf(`window.__porticoNoReload === true ? +document.querySelector('#traffic .site[data-site=%q]').dataset.points : -1`, busy), &n); err != nil {
			return err
		}
		if n <= first[busy] {
			return fmt.Errorf("points %d, were %d", n, first[busy])
		}
		return nil
	})

	// The same counts on the Prometheus endpoint, with bounded labels.
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		fmt.Sprintf(`portico_site_requests_total{code="2xx",site=%q}`, busy),
		fmt.Sprintf(`portico_site_requests_total{code="2xx",site=%q}`, quiet),
		fmt.Sprintf(`portico_site_upstream_connect_failures_total{site=%q}`, broken),
		fmt.Sprintf(`portico_site_request_duration_seconds_bucket{site=%q,le="0.005"}`, busy),
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics has no %s", want)
		}
	}

	dir := artifactDir(t)
	for _, s := range []struct {
		name   string
		width  int
		mobile bool
	}{{"traffic-desktop.png", 1280, false}, {"traffic-phone.png", 390, true}} {
		path := filepath.Join(dir, s.name)
		if err := b.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": s.width, "height": 800, "deviceScaleFactor": 1, "mobile": s.mobile}, nil); err != nil {
			t.Fatal(err)
		}
		// The charts take the new width once the page has seen the resize.
		eventually(t, 10*time.Second, "charts fit "+s.name, func() error {
			var w float64
			if err := b.eval(`Math.max(...[...document.querySelectorAll("#traffic .chart .uplot")].map((u) => u.getBoundingClientRect().right))`, &w); err != nil {
				return err
			}
			if w > float64(s.width) {
				return fmt.Errorf("a chart ends at %.0f px of %d", w, s.width)
			}
			return nil
		})
		if err := b.screenshot(path, s.width, s.mobile); err != nil {
			t.Errorf("screenshot %s: %v", s.name, err)
			continue
		}
		t.Logf("screenshot: %s", path)
	}
}
