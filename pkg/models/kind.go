package models

import (
	"encoding/binary"
	"net/netip"

	"github.com/cespare/xxhash/v2"
)

// Kind is the kind of entity a baseline is kept for.
type Kind uint8

// Entity kinds. Principal, SourceNet and Credential are on by default: the
// forged-token crawl of the motivating case is visible only through the
// latter two.
const (
	KindPrincipal Kind = iota
	KindSourceNet
	KindCredential
	KindSourceIP
	KindClient
	numKinds
)

var kindNames = [numKinds]string{"principal", "source_net", "credential", "source_ip", "client"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "unknown"
}

// ParseKind maps a kind name back to a Kind.
func ParseKind(s string) (Kind, bool) {
	for i, n := range kindNames {
		if n == s {
			return Kind(i), true
		}
	}
	return 0, false
}

// kindSalt separates the hash spaces of kinds, so that a principal and a
// client with the same name are different entities.
var kindSalt = [numKinds]uint64{0x9e3779b97f4a7c15, 0xbf58476d1ce4e5b9, 0x94d049bb133111eb, 0x2545f4914f6cdd1d, 0xd6e8feb86659fd93}

func mix(h uint64) uint64 {
	h ^= h >> 31
	h *= 0x7fb5d329728ea185
	h ^= h >> 27
	h *= 0x81dadef4bc2dd44d
	h ^= h >> 33
	return h
}

// keyHash returns the 64-bit identity of (kind, key). Entities are stored
// by it: a collision between two of a million entities has a probability
// near 3e-8, and costs a merged baseline, not a crash.
func keyHash(k Kind, key string) uint64 {
	return mix(xxhash.Sum64String(key) ^ kindSalt[k])
}

// netHash is keyHash for a network prefix, computed on its bytes so that no
// string is built unless the entity is new.
func netHash(k Kind, p netip.Prefix) uint64 {
	var b [17]byte
	a := p.Addr().As16()
	copy(b[:16], a[:])
	b[16] = byte(p.Bits())
	return mix(xxhash.Sum64(b[:]) ^ kindSalt[k])
}

func addrHash(k Kind, a netip.Addr) uint64 {
	var b [16]byte
	a16 := a.As16()
	copy(b[:], a16[:])
	return mix(binary.LittleEndian.Uint64(b[:8]) ^ mix(binary.LittleEndian.Uint64(b[8:])) ^ kindSalt[k])
}

// entityRef names one entity an event updates, before its key string is
// known to be needed.
type entityRef struct {
	kind   Kind
	hash   uint64
	str    string       // key for string-keyed kinds
	prefix netip.Prefix // key for network kinds
}

// key renders the entity key; it allocates for network kinds and is called
// only when an entity is created.
func (r *entityRef) key() string {
	switch r.kind {
	case KindSourceNet:
		return r.prefix.String()
	case KindSourceIP:
		return r.prefix.Addr().String()
	}
	return r.str
}

// refs fills out with the entities the event names among the enabled
// kinds and returns how many there are. It also fills the hashes of x that
// detectors share (principal, source network, client), so each is computed
// once per event.
func (e *Engine) refs(x *eventFacts, out *[numKinds]entityRef) int {
	ev := x.ev
	n := 0
	x.prinHash = xxhash.Sum64String(ev.Principal)
	if e.kinds[KindPrincipal] && ev.Principal != "" {
		out[n] = entityRef{kind: KindPrincipal, hash: mix(x.prinHash ^ kindSalt[KindPrincipal]), str: ev.Principal}
		n++
	}
	x.srcHash = 0
	if ev.SourceIP.IsValid() {
		bits := e.netBits4
		if ev.SourceIP.Is6() {
			bits = e.netBits6
		}
		if p, err := ev.SourceIP.Prefix(bits); err == nil {
			x.srcHash = netHash(KindSourceNet, p)
			if e.kinds[KindSourceNet] {
				out[n] = entityRef{kind: KindSourceNet, hash: x.srcHash, prefix: p}
				n++
			}
		}
		if e.kinds[KindSourceIP] {
			a := ev.SourceIP.WithZone("")
			out[n] = entityRef{kind: KindSourceIP, hash: addrHash(KindSourceIP, a), prefix: netip.PrefixFrom(a, a.BitLen())}
			n++
		}
	}
	if e.kinds[KindCredential] && ev.Credential != "" {
		out[n] = entityRef{kind: KindCredential, hash: keyHash(KindCredential, ev.Credential), str: ev.Credential}
		n++
	}
	x.clientHash = 0
	if ev.Client != "" {
		x.clientHash = keyHash(KindClient, ev.Client)
		if e.kinds[KindClient] {
			out[n] = entityRef{kind: KindClient, hash: x.clientHash, str: ev.Client}
			n++
		}
	}
	return n
}
