package event

import (
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func TestInterner(t *testing.T) {
	in := NewInterner(0)
	if in.capacity != DefaultInternCapacity {
		t.Errorf("default capacity = %d, want %d", in.capacity, DefaultInternCapacity)
	}
	b := []byte("alice")
	s1 := in.Intern(b)
	b[0] = 'X' // the result must not alias b
	if s1 != "alice" {
		t.Fatalf("Intern() = %q after the input changed, want alice", s1)
	}
	s2 := in.Intern([]byte("alice"))
	if unsafe.StringData(s1) != unsafe.StringData(s2) {
		t.Error("Intern() returned a new string for a value seen before")
	}
	if in.Intern(nil) != "" || in.Intern([]byte{}) != "" {
		t.Error("Intern(empty) != \"\"")
	}
	if a := testing.AllocsPerRun(100, func() { in.Intern([]byte("alice")) }); a != 0 {
		t.Errorf("Intern() of a known value allocates %v times, want 0", a)
	}
}

func TestInternerBounded(t *testing.T) {
	const capacity = 4
	in := NewInterner(capacity)
	hot := in.Intern([]byte("hot"))
	for i := range 1000 {
		in.Intern([]byte("cold-" + strconv.Itoa(i)))
		// A value in steady use survives every rotation.
		if s := in.Intern([]byte("hot")); unsafe.StringData(s) != unsafe.StringData(hot) {
			t.Fatalf("hot value lost its interned copy after %d unique values", i)
		}
		if n := len(in.cur) + len(in.old); n > 2*capacity {
			t.Fatalf("interner holds %d strings, want at most %d", n, 2*capacity)
		}
	}
	// A cold value from long ago has been dropped.
	if _, ok := in.cur["cold-0"]; ok {
		t.Error("cold-0 still interned after 1000 newer values")
	}
	if _, ok := in.old["cold-0"]; ok {
		t.Error("cold-0 still interned after 1000 newer values")
	}
}

func TestInternerPromotesFromOld(t *testing.T) {
	in := NewInterner(2)
	a := in.Intern([]byte("a"))
	in.Intern([]byte("b"))
	in.Intern([]byte("c")) // rotates: a and b are old now
	if _, ok := in.old["a"]; !ok {
		t.Fatal("a not in the old generation after a rotation")
	}
	if s := in.Intern([]byte("a")); unsafe.StringData(s) != unsafe.StringData(a) {
		t.Error("hit in the old generation returned a new string")
	}
	if _, ok := in.cur["a"]; !ok {
		t.Error("hit in the old generation was not promoted")
	}
}

func TestInternerBoundsBytes(t *testing.T) {
	const capacity = 16
	in := NewInterner(capacity)
	for i := range 1000 {
		in.Intern([]byte(strconv.Itoa(i) + strings.Repeat("x", maxInternLen-10)))
		var n int
		for s := range in.cur {
			n += len(s)
		}
		if n != in.bytes || n > capacity*internBytesPerString {
			t.Fatalf("current generation holds %d bytes (counted %d), want at most %d", n, in.bytes, capacity*internBytesPerString)
		}
	}
}

func TestInternerSkipsLongValues(t *testing.T) {
	in := NewInterner(0)
	long := []byte(strings.Repeat("x", maxInternLen+1))
	if s := in.Intern(long); s != string(long) {
		t.Fatal("Intern() changed a long value")
	}
	if len(in.cur) != 0 {
		t.Error("a value longer than maxInternLen was interned")
	}
}
