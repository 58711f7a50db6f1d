package models

import (
	"math"
	"strings"
	"unsafe"

	"github.com/exfilguard/exfilguard/pkg/config"
)

// classifier decides whether an object holds customer data, and of which
// class. Patterns are substrings of the lower-cased name; the answer is
// cached per object name, so the hot path pays one map lookup (objects are
// few and their names interned).
//
// A class is a small number: 0 not sensitive, 1 the sensitive.patterns
// (weight 1), 2+i sensitive.classes[i].
type classifier struct {
	patterns, exclude []string
	classes           [][]string
	// weights and names are per class number.
	weights []float64
	names   []string
	// maxWeight is the largest weight (at least 1): dividing weighted rows
	// by it gives a lower bound of the real rows, whatever the mix.
	maxWeight float64
	cache     map[string]uint8
	// recent is a direct-mapped cache in front of the map, keyed by the
	// string's data pointer: decoders intern object names, so the same
	// object arrives as the same pointer and a hit costs no hashing.
	recent [256]recentObject
}

type recentObject struct {
	ptr   *byte
	n     int
	class uint8
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
	cl := &classifier{patterns: lower(c.Patterns), exclude: lower(c.Exclude), cache: make(map[string]uint8),
		weights: []float64{0, 1}, names: []string{"", ""}, maxWeight: 1}
	for _, k := range c.Classes {
		cl.classes = append(cl.classes, lower(k.Patterns))
		cl.weights = append(cl.weights, k.Weight)
		cl.names = append(cl.names, k.Name)
		cl.maxWeight = max(cl.maxWeight, k.Weight)
	}
	return cl
}

// class returns the class number of object (0: not sensitive).
func (c *classifier) class(object string) uint8 {
	if object == "" {
		return 0
	}
	p := unsafe.StringData(object)
	r := &c.recent[uintptr(unsafe.Pointer(p))>>4&255]
	if r.ptr == p && r.n == len(object) {
		return r.class
	}
	v, ok := c.cache[object]
	if !ok {
		v = c.classify(object)
		if len(c.cache) >= maxClassifierCache {
			clear(c.cache)
		}
		c.cache[object] = v
	}
	*r = recentObject{ptr: p, n: len(object), class: v}
	return v
}

func (c *classifier) sensitive(object string) bool { return c.class(object) != 0 }

func (c *classifier) classify(object string) uint8 {
	o := strings.ToLower(object)
	for _, x := range c.exclude {
		if strings.Contains(o, x) {
			return 0
		}
	}
	for i, pats := range c.classes {
		for _, p := range pats {
			if strings.Contains(o, p) {
				return uint8(2 + i)
			}
		}
	}
	for _, p := range c.patterns {
		if strings.Contains(o, p) {
			return 1
		}
	}
	return 0
}

// weighted is rows of class cl as counted in the sensitive-rows measure.
func (c *classifier) weighted(rows int64, cl uint8) int64 {
	if w := c.weights[cl]; w != 1 {
		return int64(math.Round(float64(rows) * w))
	}
	return rows
}

// className is the name of the heaviest class among objects, "" when
// none has a class of its own.
func (c *classifier) className(objects []string) string {
	best, name := 0.0, ""
	for _, o := range objects {
		if cl := c.class(o); cl >= 2 && c.weights[cl] > best {
			best, name = c.weights[cl], c.names[cl]
		}
	}
	return name
}
