package alerts

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
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
