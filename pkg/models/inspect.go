package models

// EntityHash returns the hash an entity of kind and key is stored under,
// for tools that look one entity up (detector state inspect). Network
// keys are parsed and normalised as the engine does; ok is false for a
// key that cannot be one of kind.
func EntityHash(kind Kind, key string) (uint64, bool) {
	switch kind {
	case KindSourceNet, KindSourceIP:
		return parseNetKey(kind, key)
	}
	if key == "" || kind >= numKinds {
		return 0, false
	}
	return keyHash(kind, key), true
}
