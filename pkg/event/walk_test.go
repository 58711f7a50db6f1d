package event

import (
	"testing"
)

func TestWalkNested(t *testing.T) {
	msg := []byte(` {"a": {"b": "x\u0041", "n": 12}, "list": [ {"c": "1"}, {"c": 2} ], "skip": [1, {"z": null}], "e": {} } `)
	var s scanner
	s.buf = msg
	var got []string
	var sum int64
	walk := func(key []byte) error {
		switch string(key) {
		case "a":
			return s.members(1, func(k []byte) error {
				name := string(k)
				v, err := s.text(name)
				got = append(got, name+"="+string(v))
				return err
			})
		case "list":
			return s.elements(1, func() error {
				return s.members(2, func(k []byte) error {
					n, _, err := s.count(string(k))
					sum += n
					return err
				})
			})
		default:
			return s.skip(1)
		}
	}
	if err := s.members(0, walk); err != nil {
		t.Fatal(err)
	}
	if err := s.end(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "b=xA" || got[1] != "n=12" || sum != 3 {
		t.Fatalf("got %v sum %d", got, sum)
	}
	allocs := testing.AllocsPerRun(100, func() {
		s.buf, s.pos = msg, 0
		got = got[:0]
		sum = 0
		_ = s.members(0, func(key []byte) error { return s.skip(1) })
	})
	if allocs != 0 {
		t.Fatalf("walk allocates %v per message", allocs)
	}
}

func TestWalkRejects(t *testing.T) {
	for _, in := range []string{`[1]`, `{"a" 1}`, `{"a":1,}`, `{"a":1} x`, `{"a":[1 2]}`} {
		var s scanner
		s.buf = []byte(in)
		err := s.members(0, func([]byte) error {
			if s.peek() == '[' {
				return s.elements(1, func() error { return s.skip(2) })
			}
			return s.skip(1)
		})
		if err == nil {
			err = s.end()
		}
		if err == nil {
			t.Errorf("%s: accepted", in)
		}
	}
}
