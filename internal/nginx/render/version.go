package render

import (
	"strconv"
	"strings"
)

// parseVersion parses "1.22.1" (a "nginx/" prefix is allowed).
func parseVersion(s string) ([3]int, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "nginx/")
	parts := strings.Split(s, ".")
	var v [3]int
	if len(parts) < 2 || len(parts) > 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

func versionBefore(v [3]int, major, minor, patch int) bool {
	w := [3]int{major, minor, patch}
	for i := range v {
		if v[i] != w[i] {
			return v[i] < w[i]
		}
	}
	return false
}

// VersionFromOutput extracts the version from `nginx -v` output
// ("nginx version: nginx/1.22.1 (Debian)").
func VersionFromOutput(out string) (string, bool) {
	i := strings.Index(out, "nginx/")
	if i < 0 {
		return "", false
	}
	f := strings.Fields(out[i+len("nginx/"):])
	if len(f) == 0 {
		return "", false
	}
	if _, ok := parseVersion(f[0]); !ok {
		return "", false
	}
	return f[0], true
}
