package event

// Decoder turns one raw message into an Event. There is one implementation
// per input format, chosen per topic, so that the stream layer does not care
// what the producers emit.
//
// Decode fills ev in place, reusing its slices, so that the hot path does not
// allocate; after an error the content of ev is unspecified. Errors are
// *DecodeError, whose Reason labels the dropped-message counter.
// Implementations are not safe for concurrent use: each partition worker
// owns its decoder, like it owns its entities.
type Decoder interface {
	Decode(msg []byte, ev *Event) error
}
