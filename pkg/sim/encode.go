package sim

import "strconv"

// event is the generator's scratch record for one access. Actors fill it,
// the Generator serialises it; strings are shared constants or slices owned
// by the actor, so filling it allocates nothing.
type event struct {
	t         int64
	principal []byte
	ptype     string
	cred      string
	role      string
	ip        []byte
	client    string
	sessPre   string // session prefix; "" means no session field
	sess      uint64
	db        string
	object    string
	action    string // "" means read
	rows      int64
	bytes     int64
	ids       []uint64 // customer numbers, written as cust-%010d
	status    string   // "" means ok
}

// ident is what stays fixed across one actor's events.
type ident struct {
	principal []byte
	ptype     string
	role      string
	cred      string
	client    string
	db        string
	sessPre   string
	ip        []byte
	seed      uint64 // derives session ids by day, shared with scenarios
}

func (id *ident) fill(e *event) {
	e.principal = id.principal
	e.ptype = id.ptype
	e.role = id.role
	e.cred = id.cred
	e.client = id.client
	e.db = id.db
	e.sessPre = id.sessPre
	e.ip = id.ip
}

// appendEvent writes e as one native-contract JSON object.
func (g *Generator) appendEvent(b []byte, e *event) []byte {
	b = append(b, `{"ts":"`...)
	b = g.appendTS(b, e.t)
	b = append(b, `","principal":`...)
	b = appendStr(b, e.principal)
	if e.ptype != "" {
		b = append(b, `,"principal_type":`...)
		b = appendStr(b, e.ptype)
	}
	if e.cred != "" {
		b = append(b, `,"credential":`...)
		b = appendStr(b, e.cred)
	}
	if e.role != "" {
		b = append(b, `,"role":`...)
		b = appendStr(b, e.role)
	}
	if len(e.ip) > 0 {
		b = append(b, `,"source_ip":`...)
		b = appendStr(b, e.ip)
	}
	if e.client != "" {
		b = append(b, `,"client":`...)
		b = appendStr(b, e.client)
	}
	if e.sessPre != "" {
		b = append(b, `,"session":"`...)
		b = append(b, e.sessPre...)
		b = appendHex16(b, e.sess)
		b = append(b, '"')
	}
	if e.db != "" {
		b = append(b, `,"database":`...)
		b = appendStr(b, e.db)
	}
	if e.object != "" {
		b = append(b, `,"object":`...)
		b = appendStr(b, e.object)
	}
	b = append(b, `,"action":`...)
	if e.action == "" {
		b = append(b, `"read"`...)
	} else {
		b = appendStr(b, e.action)
	}
	b = append(b, `,"rows":`...)
	b = strconv.AppendInt(b, e.rows, 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.bytes, 10)
	if len(e.ids) > 0 {
		b = append(b, `,"record_ids":[`...)
		for i, id := range e.ids {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = appendCust(b, id)
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	b = append(b, `,"status":`...)
	if e.status == "" {
		b = append(b, `"ok"`...)
	} else {
		b = appendStr(b, e.status)
	}
	return append(b, '}')
}

// appendTS writes t as RFC 3339 with milliseconds in UTC
// ("2026-01-05T08:03:12.345Z"). The date part is cached: events come in time
// order, so it changes once a simulated day.
func (g *Generator) appendTS(b []byte, t int64) []byte {
	day := floorDiv(t, msDay)
	if day != g.tsDay || !g.tsOK {
		g.tsDay, g.tsOK = day, true
		y, m, d := civil(day)
		g.tsPre = [11]byte{byte('0' + y/1000%10), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10), '-',
			byte('0' + m/10), byte('0' + m%10), '-', byte('0' + d/10), byte('0' + d%10), 'T'}
	}
	b = append(b, g.tsPre[:]...)
	ms := t - day*msDay
	h := ms / msHour
	ms -= h * msHour
	mi := ms / msMinute
	ms -= mi * msMinute
	s := ms / msSecond
	ms -= s * msSecond
	return append(b, byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+s/10), byte('0'+s%10), '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

// appendStr writes s as a JSON string. Generated strings never need
// escaping, but the slow path keeps the output valid whatever they hold.
func appendStr[S string | []byte](b []byte, s S) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return appendStrSlow(b, string(s))
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendStrSlow(b []byte, s string) []byte {
	b = append(b, '"')
	const hex = "0123456789abcdef"
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&15])
		default:
			b = append(b, string(r)...)
		}
	}
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

func appendHex16(b []byte, v uint64) []byte {
	var d [16]byte
	for i := 15; i >= 0; i-- {
		d[i] = hexDigits[v&15]
		v >>= 4
	}
	return append(b, d[:]...)
}

// appendCust writes a customer number as its record id, cust-%010d.
func appendCust(b []byte, n uint64) []byte {
	var d [15]byte
	copy(d[:], "cust-")
	for i := 14; i >= 5; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, d[:]...)
}

func appendIPv4(b []byte, a, c, d, e byte) []byte {
	b = strconv.AppendUint(b, uint64(a), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(c), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(d), 10)
	b = append(b, '.')
	return strconv.AppendUint(b, uint64(e), 10)
}

func ipv4(a, b, c, d byte) []byte { return appendIPv4(nil, a, b, c, d) }
