package main

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestWSEchoEchoesFramesUntilClose(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(wsEcho))
	defer srv.Close()
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("upgrade: %s %v", resp.Status, resp.Header)
	}
	send := func(op byte, p string) {
		mask := []byte{1, 2, 3, 4}
		f := append([]byte{0x80 | op, 0x80 | byte(len(p))}, mask...)
		for i := range len(p) {
			f = append(f, p[i]^mask[i%4])
		}
		if _, err := c.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		op, wantOp byte
		p          string
	}{{0x1, 0x1, "hello"}, {0x2, 0x2, "\x00\x01"}, {0x9, 0xA, "ping"}, {0x8, 0x8, "\x03\xe8"}} {
		send(tc.op, tc.p)
		op, p, err := readFrame(br)
		if err != nil {
			t.Fatalf("op %#x: %v", tc.op, err)
		}
		if op != tc.wantOp || string(p) != tc.p {
			t.Errorf("op %#x %q: got op %#x %q, want %#x %q", tc.op, tc.p, op, p, tc.wantOp, tc.p)
		}
	}
	// After the close the server hangs up.
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after close: %v, want EOF", err)
	}
}

func TestWSEchoRefusesPlainRequests(t *testing.T) {
	rec := httptest.NewRecorder()
	wsEcho(rec, httptest.NewRequest("GET", "/ws", nil))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("plain GET /ws: %d, want 400", rec.Code)
	}
}
