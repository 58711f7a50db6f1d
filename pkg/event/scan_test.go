package event

import (
	"math/rand/v2"
	"testing"
)

// TestPlainMatchesByteLoop checks the eight-at-a-time scan against the
// obvious loop, over every byte value in every position.
func TestPlainMatchesByteLoop(t *testing.T) {
	naive := func(b []byte, i int) int {
		for ; i < len(b); i++ {
			if c := b[i]; c == '"' || c == '\\' || c < 0x20 {
				return i
			}
		}
		return i
	}
	rng := rand.New(rand.NewPCG(5, 6))
	b := make([]byte, 40)
	for range 200_000 {
		for i := range b {
			b[i] = 'a' + byte(rng.IntN(26))
			if rng.IntN(4) == 0 {
				b[i] = byte(rng.IntN(256))
			}
		}
		n := rng.IntN(len(b) + 1)
		start := rng.IntN(n + 1)
		got := plain(b[:n], start)
		want := naive(b[:n], start)
		// plain stops at the first special byte, or earlier only where
		// fewer than eight bytes are left.
		if got > want || got < want && n-got >= 8 {
			t.Fatalf("plain(%q, %d) = %d, want %d", b[:n], start, got, want)
		}
	}
}
