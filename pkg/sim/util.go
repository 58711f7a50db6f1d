package sim

import (
	"math"
	"math/rand/v2"
)

// Times inside the package are int64 milliseconds since the Unix epoch, UTC.
// The company's local time is UTC, so "02:00" means 02:00Z.
const (
	msSecond int64 = 1000
	msMinute       = 60 * msSecond
	msHour         = 60 * msMinute
	msDay          = 24 * msHour

	// never is the next-event time of a finished actor.
	never int64 = math.MaxInt64
)

const golden = 0x9e3779b97f4a7c15

// splitmix is the SplitMix64 output function: a cheap, well-mixed bijection
// used to derive seeds and stable per-entity attributes from integers.
func splitmix(x uint64) uint64 {
	x += golden
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// fnv1a hashes a stream name.
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// deriveSeed gives every actor (and every scenario) its own seed from the
// run seed, its stream name and its index. Actors never share a random
// stream, so what one actor draws cannot shift what another produces: adding
// an attack scenario (new actors with their own streams) leaves every benign
// actor's events byte-identical.
func deriveSeed(seed uint64, stream string, idx int) uint64 {
	return splitmix(seed ^ splitmix(fnv1a(stream)+uint64(idx)*golden))
}

// newRand returns a PCG generator for a derived seed.
func newRand(s uint64) *rand.Rand {
	return rand.New(rand.NewPCG(s, splitmix(s^0x5bd1e9955bd1e995)))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// weekday of a day number (days since 1970-01-01, a Thursday); 0 = Sunday.
func weekday(day int64) int {
	return int((day%7 + 11) % 7)
}

func isWeekend(day int64) bool {
	wd := weekday(day)
	return wd == 0 || wd == 6
}

// civil converts a day number to a proleptic Gregorian date
// (H. Hinnant's civil_from_days).
func civil(z int64) (y int64, m, d int) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func daysIn(y int64, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// monthEnd reports whether day is one of the last three days of its month,
// when analysts close the books.
func monthEnd(day int64) bool {
	y, m, d := civil(day)
	return d > daysIn(y, m)-3
}

// curve is a periodic intensity: an hour-of-day profile (linearly
// interpolated between hours) times a day-of-week factor. Arrival processes
// are Poisson with rate perDay × at(t) / day, drawn by thinning against max.
type curve struct {
	h   [25]float64
	wk  [7]float64
	max float64
}

// newCurve builds a curve; hourly values are normalised to a mean of 1 so
// that a process's perDay rate is its mean rate on a day of weekly factor 1.
func newCurve(hourly [24]float64, weekly [7]float64, normalise bool) *curve {
	c := &curve{wk: weekly}
	sum := 0.0
	for _, v := range hourly {
		sum += v
	}
	k := 1.0
	if normalise {
		k = 24 / sum
	}
	hm, wm := 0.0, 0.0
	for i, v := range hourly {
		c.h[i] = v * k
		hm = math.Max(hm, c.h[i])
	}
	c.h[24] = c.h[0]
	for _, v := range weekly {
		wm = math.Max(wm, v)
	}
	c.max = hm * wm
	return c
}

func (c *curve) at(t int64) float64 {
	day := floorDiv(t, msDay)
	ms := t - day*msDay
	i := ms / msHour
	f := float64(ms-i*msHour) / float64(msHour)
	return (c.h[i] + (c.h[i+1]-c.h[i])*f) * c.wk[weekday(day)]
}

// arrival returns the first arrival after t of a Poisson process with rate
// perDay × c.at(t) per day, by thinning (Lewis–Shedler): candidates at the
// peak rate, each kept with probability at(t)/max. It returns never once the
// candidate passes end.
func arrival(r *rand.Rand, t int64, perDay float64, c *curve, end int64) int64 {
	mean := float64(msDay) / (perDay * c.max) // ms between candidates
	for {
		t += 1 + int64(r.ExpFloat64()*mean)
		if t >= end {
			return never
		}
		if r.Float64()*c.max < c.at(t) {
			return t
		}
	}
}

// expMs draws an exponential duration with the given mean in ms.
func expMs(r *rand.Rand, mean float64) int64 {
	return int64(r.ExpFloat64() * mean)
}

// uniMs draws a uniform duration in [lo, hi) ms.
func uniMs(r *rand.Rand, lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	return lo + r.Int64N(hi-lo)
}

// lognormal draws a positive count with the given median and log-sd.
func lognormal(r *rand.Rand, median, sigma float64) int64 {
	v := int64(median * math.Exp(sigma*r.NormFloat64()))
	if v < 1 {
		v = 1
	}
	return v
}

// status draws an outcome with the given per-mille rates of denied and error.
func status(r *rand.Rand, deniedPM, errorPM int) string {
	u := r.IntN(1000)
	switch {
	case u < deniedPM:
		return "denied"
	case u < deniedPM+errorPM:
		return "error"
	}
	return "ok"
}

// bytesFor is the response size of rows records (about 300 bytes a row).
func bytesFor(r *rand.Rand, rows int64) int64 {
	if rows <= 0 {
		return 0
	}
	return rows * int64(270+r.IntN(61))
}

// schedule is a person's working pattern: the weekdays they work, the shift
// start and length, a per-day start jitter and an absence rate. Working days,
// jitter and absences are a hash of (seed, day), not draws from the person's
// random stream, so an attack scenario can know the person's hours without
// disturbing them.
type schedule struct {
	seed     uint64
	weekdays uint8 // bit i set: works on weekday i (0 = Sunday)
	start    int64 // ms after midnight
	length   int64
	jitter   int64 // start moves by up to ± jitter ms
	absentPM uint64
}

// window returns the working window of day d, if the person works that day.
func (s *schedule) window(d int64) (st, en int64, ok bool) {
	if s.weekdays&(1<<weekday(d)) == 0 {
		return 0, 0, false
	}
	h := splitmix(s.seed ^ uint64(d)*golden)
	if h%1000 < s.absentPM {
		return 0, 0, false
	}
	j := int64(0)
	if s.jitter > 0 {
		j = int64((h>>16)%uint64(2*s.jitter+1)) - s.jitter
	}
	st = d*msDay + s.start + j
	return st, st + s.length, true
}

// next returns the first working window that ends after t, its start clipped
// to t.
func (s *schedule) next(t int64) (st, en int64) {
	for d := floorDiv(t, msDay) - 1; ; d++ {
		if st, en, ok := s.window(d); ok && en > t {
			return max(st, t), en
		}
	}
}

// shuffle is a keyed pseudo-random permutation of [0, n): a 4-round Feistel
// network on the smallest even number of bits covering n, with cycle walking
// to stay inside the domain. It lets an actor visit every customer once in a
// random order without remembering which it has visited.
type shuffle struct {
	n, half, mask uint64
	keys          [4]uint64
}

func newShuffle(n, key uint64) shuffle {
	s := shuffle{n: max(n, 1)}
	bits := uint64(2)
	for uint64(1)<<bits < s.n {
		bits += 2
	}
	s.half = bits / 2
	s.mask = 1<<s.half - 1
	for i := range s.keys {
		key = splitmix(key)
		s.keys[i] = key
	}
	return s
}

// at returns the i-th element of the permutation; it wraps after n.
func (s *shuffle) at(i uint64) uint64 {
	x := i % s.n
	for {
		l, r := x>>s.half, x&s.mask
		for _, k := range s.keys {
			l, r = r, l^(splitmix(r^k)&s.mask)
		}
		x = l<<s.half | r
		if x < s.n {
			return x
		}
	}
}
