package event

// Walking JSON objects and arrays for the decoders of other products'
// formats, which nest what Native reads flat (a MySQL record's login
// object, an OCSF actor, a DAS event list). The callbacks are only called,
// never kept, so a closure passed to them stays on the caller's stack and
// walking allocates nothing.

// members walks the members of the JSON object at pos, calling member with
// each key and the scanner at the value. member must consume the value (a
// scalar read, s.skip(depth+1), or a nested members/elements walk). The key
// may live in the scratch buffer: it is valid only until the value is read,
// so resolve it first. depth is the object's nesting, for s.skip.
func (s *scanner) members(depth int, member func(key []byte) error) error {
	s.skipWS()
	switch c := s.peek(); {
	case c == '{':
	case c == '[' || c == '"' || c == '-' || isDigit(c) || c == 't' || c == 'f' || c == 'n':
		return &DecodeError{Reason: ReasonNotObject, Offset: s.pos}
	default:
		return s.malformed()
	}
	if depth > maxDepth {
		return s.malformed()
	}
	s.pos++
	s.skipWS()
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.malformed()
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		s.skipWS()
		if s.peek() != ':' {
			return s.malformed()
		}
		s.pos++
		s.skipWS()
		if err := member(key); err != nil {
			return err
		}
		s.skipWS()
		switch s.peek() {
		case ',':
			s.pos++
			s.skipWS()
		case '}':
			s.pos++
			return nil
		default:
			return s.malformed()
		}
	}
}

// elements walks the JSON array at pos, calling elem with the scanner at
// each element; elem must consume it. depth is the array's nesting.
func (s *scanner) elements(depth int, elem func() error) error {
	s.skipWS()
	if s.peek() != '[' {
		return s.malformed()
	}
	if depth > maxDepth {
		return s.malformed()
	}
	s.pos++
	s.skipWS()
	if s.peek() == ']' {
		s.pos++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		s.skipWS()
		switch s.peek() {
		case ',':
			s.pos++
			s.skipWS()
		case ']':
			s.pos++
			return nil
		default:
			return s.malformed()
		}
	}
}

// end checks that nothing but white space follows the top-level value.
func (s *scanner) end() error {
	s.skipWS()
	if s.pos != len(s.buf) {
		return s.malformed()
	}
	return nil
}

// text reads a scalar as text: a string unescaped, a number as written;
// null and absent are nil. Objects, arrays and booleans are bad values of
// field f. The result is valid until the next read.
func (s *scanner) text(field string) ([]byte, error) {
	start := s.pos
	k, v, err := s.scalar()
	if err != nil {
		return nil, err
	}
	switch k {
	case kindString, kindNumber:
		return v, nil
	case kindNull:
		return nil, nil
	}
	return nil, &DecodeError{Reason: ReasonBadValue, Field: field, Offset: start}
}

// count reads a count given as a number or a numeric string (producers
// disagree); null is absent (ok false, no error).
func (s *scanner) count(field string) (n int64, ok bool, err error) {
	start := s.pos
	v, err := s.text(field)
	if err != nil || v == nil {
		return 0, false, err
	}
	n, ok = parseCount(v)
	if !ok {
		return 0, false, &DecodeError{Reason: ReasonBadValue, Field: field, Offset: start}
	}
	return n, true, nil
}
