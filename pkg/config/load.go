package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// FieldError is one problem in a config file, located so that an engineer
// can jump to it: FILE:LINE: field.path: message.
type FieldError struct {
	File string
	Line int // 0 when the field is not written in the file
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads and validates the config file at path, starting from the
// defaults. All problems are reported at once, joined.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

var yamlLineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// Parse decodes data (named name in errors) strictly over the defaults and
// validates the result.
func Parse(name string, data []byte) (*Config, error) {
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// A type error (an unknown key, a string where a number goes) leaves
	// the rest decoded: validate that too, so that one run lists every
	// problem. A syntax error leaves nothing worth validating.
	var typeErrs []error
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, yamlErrors(name, err)
		}
		typeErrs = fieldErrors(name, err)
	}
	cfg.Alerts.FillDefaults()
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root) // already decoded once; positions and override nodes are wanted
	if err := cfg.resolveOverrides(&root); err != nil {
		return nil, yamlErrors(name, err)
	}
	fes := cfg.Validate()
	for _, fe := range fes {
		fe.File = name
		fe.Line = lineOf(&root, fe.Path)
	}
	// In file order, as an editor would walk them.
	slices.SortStableFunc(fes, func(a, b *FieldError) int { return a.Line - b.Line })
	errs := typeErrs
	for _, fe := range fes {
		errs = append(errs, fe)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

// yamlErrors turns yaml.v3's messages ("line 3: field foo not found in type
// config.Engine") into FieldErrors.
func yamlErrors(name string, err error) error {
	return errors.Join(fieldErrors(name, err)...)
}

func fieldErrors(name string, err error) []error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	errs := make([]error, 0, len(msgs))
	for _, m := range msgs {
		fe := &FieldError{File: name, Msg: m}
		if sm := yamlLineRe.FindStringSubmatch(m); sm != nil {
			fe.Line, _ = strconv.Atoi(sm[1])
			fe.Msg = sm[2]
		}
		fe.Msg = strings.Replace(fe.Msg, "not found in type", "is not a known field of", 1)
		errs = append(errs, fe)
	}
	return errs
}

// lineOf finds the line of a dotted path such as "engine.horizons[1]" in a
// parsed document, or of its nearest written ancestor.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, part := range strings.Split(path, ".") {
		key, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			key = part[:i]
			idx, _ = strconv.Atoi(part[i+1 : len(part)-1])
		}
		if n == nil || n.Kind != yaml.MappingNode {
			return line
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line = n.Content[i].Line
				next = n.Content[i+1]
				break
			}
		}
		if next == nil {
			return line
		}
		n = next
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}
