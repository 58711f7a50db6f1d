package models

import (
	"strings"
	"unsafe"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// classifier decides whether an object holds customer data. Patterns are
// substrings of the lower-cased name; the answer is cached per object
// name, so the hot path pays one map lookup (objects are few and their
// names interned).
type classifier struct {
	patterns, exclude []string
	cache             map[string]bool
	// recent is a direct-mapped cache in front of the map, keyed by the
	// string's data pointer: decoders intern object names, so the same
	// object arrives as the same pointer and a hit costs no hashing.
	recent [256]recentObject
}

type recentObject struct {
	ptr       *byte
	n         int
	sensitive bool
}

// maxClassifierCache bounds the cache against a flood of distinct object
// names (a REST API with ids in its paths, say); past it the cache starts
// over.
const maxClassifierCache = 1 << 16

func newClassifier(c config.Sensitive) *classifier {
	lower := func(in []string) []string {
		out := make([]string, len(in))
		for i, s := range in {
			out[i] = strings.ToLower(s)
		}
		return out
	}
	return &classifier{patterns: lower(c.Patterns), exclude: lower(c.Exclude), cache: make(map[string]bool)}
}

func (c *classifier) sensitive(object string) bool {
	if object == "" {
		return false
	}
	p := unsafe.StringData(object)
	r := &c.recent[uintptr(unsafe.Pointer(p))>>4&255]
	if r.ptr == p && r.n == len(object) {
		return r.sensitive
	}
	v, ok := c.cache[object]
	if !ok {
		v = c.classify(object)
		if len(c.cache) >= maxClassifierCache {
			clear(c.cache)
		}
		c.cache[object] = v
	}
	*r = recentObject{ptr: p, n: len(object), sensitive: v}
	return v
}

func (c *classifier) classify(object string) bool {
	o := strings.ToLower(object)
	for _, x := range c.exclude {
		if strings.Contains(o, x) {
			return false
		}
	}
	for _, p := range c.patterns {
		if strings.Contains(o, p) {
			return true
		}
	}
	return false
}
