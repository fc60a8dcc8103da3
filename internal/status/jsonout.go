package status

import (
	"encoding/json"
	"fmt"
	"io"
)

// EncodeJSON writes v as indented JSON with the characters encoding/json
// leaves raw but a terminal interprets (C1 controls, bidi overrides)
// escaped, as WriteJSON does for the report. Other commands that print
// values from etcd as JSON (`portico explain`) use it. It redacts nothing:
// the caller redacts errors first.
func EncodeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %T: %w", v, err)
	}
	_, err = w.Write(append(escapeJSON(b), '\n'))
	return err
}
