package alerts

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	"github.com/cespare/xxhash/v2"
)

// Pseudonymizer replaces customer identifiers with keyed-hash pseudonyms,
// so an analyst can see that two alerts concern the same customer without
// the alert stream becoming a copy of the customer list. Without a key the
// identifier is redacted entirely: an unkeyed hash of an account id can be
// reversed by hashing every account id.
type Pseudonymizer struct {
	key []byte
}

// NewPseudonymizer uses key (from a file or the environment, never from the
// config body); a nil or empty key redacts.
func NewPseudonymizer(key []byte) *Pseudonymizer {
	return &Pseudonymizer{key: append([]byte(nil), key...)}
}

// Redacted is what a customer identifier becomes without a key.
const Redacted = "customer:redacted"

// Name returns the pseudonym of a customer identifier.
func (p *Pseudonymizer) Name(id string) string {
	if p == nil || len(p.key) == 0 {
		return Redacted
	}
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(id))
	return "customer:" + hex.EncodeToString(m.Sum(nil)[:8])
}

// Keyed reports whether p has a key, without which no sample is shown.
func (p *Pseudonymizer) Keyed() bool { return p != nil && len(p.key) > 0 }

// Record returns the pseudonym of a record id given as the 64-bit hash the
// decoders keep (xxhash64 of the id): the raw id never reaches the
// detector's memory, so the pseudonym is the keyed HMAC of that hash. An
// analyst holding the key finds a suspected record's pseudonym with
// RecordID.
func (p *Pseudonymizer) Record(h uint64) string {
	if !p.Keyed() {
		return "record:redacted"
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], h)
	m := hmac.New(sha256.New, p.key)
	m.Write(b[:])
	return "record:" + hex.EncodeToString(m.Sum(nil)[:8])
}

// RecordID returns the pseudonym an alert sample shows for the record id
// id, so that an analyst can check whether a given record is among them.
func (p *Pseudonymizer) RecordID(id string) string { return p.Record(xxhash.Sum64String(id)) }
