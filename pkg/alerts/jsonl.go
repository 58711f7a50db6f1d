package alerts

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// JSONL writes alerts one JSON object per line: the stdout and file sink
// format of the contract.
type JSONL struct {
	bw  *bufio.Writer
	enc *json.Encoder
}

// NewJSONL writes to w; call Flush before w is closed.
func NewJSONL(w io.Writer) *JSONL {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &JSONL{bw: bw, enc: enc}
}

// Write encodes one alert.
func (j *JSONL) Write(a *Alert) error {
	if err := j.enc.Encode(a); err != nil {
		return fmt.Errorf("encode alert: %w", err)
	}
	return nil
}

// Flush writes buffered alerts through.
func (j *JSONL) Flush() error {
	if err := j.bw.Flush(); err != nil {
		return fmt.Errorf("flush alerts: %w", err)
	}
	return nil
}
