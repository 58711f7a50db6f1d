package alerts

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// Render encodes a in a sink format: "native" (the alert of DESIGN.md) or
// "ocsf" (an OCSF Detection Finding). No trailing newline.
func Render(format string, a *Alert) ([]byte, error) {
	var v any = a
	if format == config.FormatOCSF {
		v = OCSF(a)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode %s alert: %w", format, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
