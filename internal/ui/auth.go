package ui

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// CookieName holds the token after a first load with ?token=.
const CookieName = "portico_ui"

// IsLoopback reports whether addr (host:port, as given to --ui-addr)
// listens on loopback only: "localhost" or a loopback IP. An empty host
// (":8099") listens on every interface and is not loopback.
func IsLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("address %q: %w", addr, err)
	}
	return loopbackHost(host), nil
}

func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// CheckAddr is the start-up rule: a non-loopback address needs a token.
func CheckAddr(addr, token string) error {
	lo, err := IsLoopback(addr)
	if err != nil {
		return err
	}
	if !lo && token == "" {
		return fmt.Errorf("address %q is not loopback: give a token (--ui-token-file or PORTICO_UI_TOKEN), or listen on 127.0.0.1", addr)
	}
	return nil
}

// errUnauthorized is a missing or wrong token.
var errUnauthorized = errors.New("missing or wrong token")

// tokenEqual compares in constant time; hashing first hides the length.
func tokenEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// authorize decides one request. With no token every request passes, but
// only with a loopback Host header (a DNS-rebinding page cannot read it).
// With a token it must come as "Authorization: Bearer", as the cookie, or
// as ?token= (then fromQuery is true and the caller sets the cookie).
func authorize(r *http.Request, token string) (fromQuery bool, err error) {
	if token == "" {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !loopbackHost(host) {
			return false, fmt.Errorf("host %q is not loopback", r.Host)
		}
		return false, nil
	}
	if h := r.Header.Get("Authorization"); h != "" {
		if b, ok := strings.CutPrefix(h, "Bearer "); ok && tokenEqual(b, token) {
			return false, nil
		}
		return false, errUnauthorized
	}
	if c, err := r.Cookie(CookieName); err == nil && tokenEqual(c.Value, cookieValue(token)) {
		return false, nil
	}
	if q := r.URL.Query().Get("token"); q != "" && tokenEqual(q, token) {
		return true, nil
	}
	return false, errUnauthorized
}

// cookieValue is what the cookie holds for token: a digest, so that any
// token (even one with characters a cookie cannot carry) round-trips.
func cookieValue(token string) string {
	h := sha256.Sum256([]byte("portico-ui-cookie\x00" + token))
	return hex.EncodeToString(h[:])
}

// pagePaths are the page's own paths: the only places the redirect after
// a first load with ?token= may go.
var pagePaths = map[string]bool{"/": true, "/app.js": true, "/app.css": true, "/api/status": true, "/events": true,
	"/api/traffic": true, "/uPlot.iife.min.js": true, "/uPlot.min.css": true}

// withoutToken is where a first load with ?token= redirects: u's path, if
// it is one of the page's own paths (else "/"), with the other query
// parameters and without the token, so the token leaves the address bar
// and history. Only a fixed path is ever sent back, never the request's
// own text: "//evil", "/\evil" or an absolute URI cannot make the
// redirect leave the page.
func withoutToken(u *url.URL) string {
	path := "/"
	if pagePaths[u.Path] && u.RawPath == "" {
		path = u.Path
	}
	q := u.Query()
	q.Del("token")
	v := url.URL{Path: path, RawQuery: q.Encode()}
	return v.String()
}
