package domain

// Event is a fact an aggregate recorded. EventType is its stable name, such
// as "session.scheduled"; it is stored and must never change once released.
type Event interface {
	EventType() string
}

// Root is embedded by every aggregate: it counts the version loaded from the
// store and keeps the events recorded since, in order.
//
// Aggregates follow record-and-apply: a command method validates, then calls
// record(event), which applies the event to the state and keeps it pending.
// The apply step never validates, so old events always replay.
type Root struct {
	version int64
	pending []Event
}

// Version is the stream version the aggregate was loaded at (not counting
// pending events): the expected version for the next append.
func (r *Root) Version() int64 { return r.version }

// Pending returns the events recorded since load.
func (r *Root) Pending() []Event { return r.pending }

// Committed marks the pending events as stored: the version moves past them.
func (r *Root) Committed() {
	r.version += int64(len(r.pending))
	r.pending = nil
}

// Loaded notes that one stored event has been applied during rehydration.
func (r *Root) Loaded() { r.version++ }

// Record applies e through apply and keeps it pending. Aggregates wrap it
// with their own apply method: func (s *Session) record(e Event) { s.Root.Record(e, s.apply) }.
func (r *Root) Record(e Event, apply func(Event)) {
	apply(e)
	r.pending = append(r.pending, e)
}
