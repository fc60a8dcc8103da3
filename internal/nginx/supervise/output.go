package supervise

import (
	"bytes"
	"strings"
)

// OneLine folds nginx's output into one log-friendly line.
func OneLine(b []byte) string {
	lines := strings.Split(string(bytes.TrimSpace(b)), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, " | ")
}
