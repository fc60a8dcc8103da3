package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// browser is a headless Chromium driven over the Chrome DevTools protocol:
// one page target, spoken to over its websocket.
type browser struct {
	cmd  *exec.Cmd
	conn *websocket.Conn

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan cdpReply
	readErr error
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// startBrowser launches Debian's chromium headless with a throw-away
// profile on a free DevTools port and opens one blank page. A missing
// chromium fails the test (scripts/install-test-deps installs it).
func startBrowser(t *testing.T) *browser {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (scripts/install-test-deps installs it): %v", err)
	}
	profile := t.TempDir()
	args := []string{"--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
		"--disable-extensions", "--disable-background-networking", "--disable-sync", "--metrics-recording-only",
		"--hide-scrollbars", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--user-data-dir=" + profile, "--window-size=1280,1000", "about:blank"}
	if os.Geteuid() == 0 {
		args = append(args, "--no-sandbox") // Chromium refuses to sandbox as root
	}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.Create(filepath.Join(profile, "chromium.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{cmd: cmd, pending: map[int64]chan cdpReply{}}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		if b.conn != nil {
			b.conn.Close()
		}
		// The process group is the one this test started: chromium and
		// its helpers.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		logf.Close()
	})

	var port string
	eventually(t, 30*time.Second, "chromium writes its DevTools port", func() error {
		b, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort"))
		if err != nil {
			return err
		}
		line, _, _ := strings.Cut(string(b), "\n")
		if _, err := strconv.Atoi(line); err != nil {
			return fmt.Errorf("DevToolsActivePort %q", b)
		}
		port = line
		return nil
	})
	// The page target chromium opened for about:blank.
	var wsURL string
	eventually(t, 10*time.Second, "chromium lists its page", func() error {
		var targets []struct {
			Type string `json:"type"`
			WS   string `json:"webSocketDebuggerUrl"`
		}
		resp, err := http.Get("http://127.0.0.1:" + port + "/json/list")
		if err != nil {
			return err
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		body := string(raw)
		if err := json.Unmarshal([]byte(body), &targets); err != nil {
			return fmt.Errorf("/json/list: %w: %s", err, body)
		}
		for _, tg := range targets {
			if tg.Type == "page" && tg.WS != "" {
				wsURL = tg.WS
				return nil
			}
		}
		return fmt.Errorf("no page in %s", body)
	})
	conn, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatalf("DevTools websocket %s: %v", wsURL, err)
	}
	b.conn = conn
	go b.read()
	return b
}

// read dispatches replies to their callers; events are dropped.
func (b *browser) read() {
	for {
		var msg struct {
			ID int64 `json:"id"`
			cdpReply
		}
		if err := b.conn.ReadJSON(&msg); err != nil {
			b.mu.Lock()
			b.readErr = err
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		if msg.ID == 0 {
			continue
		}
		b.mu.Lock()
		ch := b.pending[msg.ID]
		delete(b.pending, msg.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- msg.cdpReply
		}
	}
}

// call sends one DevTools command and waits for its reply.
func (b *browser) call(method string, params any, result any) error {
	b.mu.Lock()
	if b.readErr != nil {
		b.mu.Unlock()
		return b.readErr
	}
	b.nextID++
	id := b.nextID
	ch := make(chan cdpReply, 1)
	b.pending[id] = ch
	err := b.conn.WriteJSON(map[string]any{"id": id, "method": method, "params": params})
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case r, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: connection closed: %v", method, b.readErr)
		}
		if r.Error != nil {
			return fmt.Errorf("%s: %d %s", method, r.Error.Code, r.Error.Message)
		}
		if result != nil {
			return json.Unmarshal(r.Result, result)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: no reply: %w", method, ctx.Err())
	}
}

func (b *browser) navigate(t *testing.T, url string) {
	t.Helper()
	var r struct {
		ErrorText string `json:"errorText"`
	}
	if err := b.call("Page.navigate", map[string]any{"url": url}, &r); err != nil {
		t.Fatal(err)
	}
	if r.ErrorText != "" {
		t.Fatalf("navigate %s: %s", url, r.ErrorText)
	}
}

// eval runs a JavaScript expression in the page and decodes its value.
func (b *browser) eval(expr string, out any) error {
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := b.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &r); err != nil {
		return err
	}
	if r.Exception != nil {
		return fmt.Errorf("%s: %s", expr, r.Exception.Text)
	}
	if len(r.Result.Value) == 0 {
		return errors.New(expr + ": no value")
	}
	return json.Unmarshal(r.Result.Value, out)
}

// screenshot saves the whole page as a PNG at path, width px wide (a
// phone when mobile).
func (b *browser) screenshot(path string, width int, mobile bool) error {
	var m struct {
		CSS struct {
			Height float64 `json:"height"`
		} `json:"cssContentSize"`
	}
	if err := b.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": mobile}, nil); err != nil {
		return err
	}
	if err := b.call("Page.getLayoutMetrics", nil, &m); err != nil {
		return err
	}
	h := int(m.CSS.Height)
	if h < 400 {
		h = 400
	}
	var shot struct {
		Data string `json:"data"`
	}
	if err := b.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": width, "height": h, "scale": 1}}, &shot); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

// artifactDir is where a test leaves files for people: $PORTICO_ARTIFACTS
// when set, else a temporary directory kept when the test fails.
func artifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("PORTICO_ARTIFACTS"); d != "" {
		d = filepath.Join(d, t.Name())
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d, err := os.MkdirTemp("", "portico-artifacts-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(d)
		}
	})
	return d
}
