package dynamic

import (
	"bytes"

	"github.com/portico/portico/internal/http01"
)

// ACMEBody encodes the pending http-01 challenges for the control
// endpoint's /acme: "portico-acme 1\n", then "<token>\t<domain>\t<key
// authorization>\n" per challenge. The records must be validated
// (http01.Select): no field holds a tab or a newline.
func ACMEBody(rs []http01.Record) []byte {
	var b bytes.Buffer
	b.WriteString("portico-acme 1\n")
	for _, r := range rs {
		b.WriteString(r.Token + "\t" + r.Domain + "\t" + r.KeyAuth + "\n")
	}
	return b.Bytes()
}
