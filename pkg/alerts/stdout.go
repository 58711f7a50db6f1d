package alerts

import (
	"context"
	"fmt"
	"io"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// Stdout writes alerts as JSON lines to the process's standard output, the
// sink `detector run` and `replay` have always had, for a log collector
// or a pipe to pick up.
type Stdout struct {
	w      io.Writer
	format string
	buf    []byte
	// torn is set when a write failed part way: the line it cut must be
	// ended before the next one, or two alerts would share a line.
	torn bool
}

// NewStdout writes to d.Stdout in cfg.Format.
func NewStdout(cfg config.Sink, d Deps) (*Stdout, error) {
	d.defaults()
	format, err := lineFormat(cfg.Format)
	if err != nil {
		return nil, err
	}
	return &Stdout{w: d.Stdout, format: format}, nil
}

// Notify writes the batch in one write and flushes the writer if it
// buffers, so that an acknowledged alert has left the process. A failed
// write may be repeated (alerts written before the failure are written
// again; their ids let readers drop them). An alert that cannot be
// encoded never will be: the others are written and the error is final.
func (s *Stdout) Notify(ctx context.Context, alerts ...*Alert) (retry bool, err error) {
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("write alerts to stdout: %w", err)
	}
	s.buf = s.buf[:0]
	if s.torn {
		s.buf = append(s.buf, '\n')
	}
	var renderErr error
	s.buf, renderErr = appendAlertLines(s.buf, s.format, alerts)
	if len(s.buf) > 0 {
		n, err := s.w.Write(s.buf)
		if err != nil {
			s.torn = s.torn || n > 0
			return true, fmt.Errorf("write alerts to stdout: %w", err)
		}
		s.torn = false
	}
	if f, ok := s.w.(interface{ Flush() error }); ok {
		if err := f.Flush(); err != nil {
			return true, fmt.Errorf("flush alerts to stdout: %w", err)
		}
	}
	if renderErr != nil {
		return false, renderErr
	}
	return false, nil
}

// lineFormat checks a line sink's format; empty is the native one, as in
// the config's defaults.
func lineFormat(f string) (string, error) {
	switch f {
	case "":
		return config.FormatNative, nil
	case config.FormatNative, config.FormatOCSF:
		return f, nil
	}
	return "", fmt.Errorf("unknown alert format %q (known: %s, %s)", f, config.FormatNative, config.FormatOCSF)
}

// appendAlertLines renders alerts one per line onto b. An alert that does
// not encode is skipped so that it cannot hold back the others; the first
// such error is returned with the lines of the rest.
func appendAlertLines(b []byte, format string, alerts []*Alert) ([]byte, error) {
	var first error
	for _, a := range alerts {
		line, err := Render(format, a)
		if err != nil {
			if first == nil {
				first = fmt.Errorf("alert %s: %w", a.ID, err)
			}
			continue
		}
		b = append(b, line...)
		b = append(b, '\n')
	}
	return b, first
}
