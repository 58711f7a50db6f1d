//go:build race

package eval

// raceEnabled: the race detector slows the long end-to-end runs tenfold;
// CI runs them without it as separate steps (.ci/run).
const raceEnabled = true
