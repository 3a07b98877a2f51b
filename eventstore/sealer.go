package eventstore

import "errors"

// ErrKeyDestroyed: the data key of the subject was destroyed (the subject
// was forgotten), so what was sealed under it can never be opened again and
// nothing new may be sealed under it.
var ErrKeyDestroyed = errors.New("eventstore: data key destroyed")

// Sealer encrypts PHI under one data key per subject (a client id), so
// that destroying a subject's key erases everything sealed for them while
// the events that carried it stay in the log (crypto-shredding).
//
// aad is bound to the ciphertext (authenticated, not encrypted): Open with
// a different aad fails. Seal creates the subject's key on first use and
// stores it durably before returning. Both return an error matching
// ErrKeyDestroyed once the subject's key is gone.
//
// The event store knows no subject and seals nothing itself: the codec
// seals event fields and the read models seal their columns.
type Sealer interface {
	Seal(subject string, plaintext, aad []byte) ([]byte, error)
	Open(subject string, sealed, aad []byte) ([]byte, error)
}

// Redacted is what a sealed text reads as once its key is destroyed.
const Redacted = "[redacted]"
