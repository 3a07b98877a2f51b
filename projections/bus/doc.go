// Package bus relays the committed event log to a message broker and gives
// consumers what they need to handle those messages safely.
//
// The Relay follows the store's ordered log from its own durable checkpoint
// and publishes every event through a watermill Publisher. Delivery is
// at least once: the checkpoint moves only after Publish returned, so a crash
// in between publishes the event again. Consumers therefore dedupe by event id
// with the durable Inbox.
//
// Topics are one per event family: "careflow." + the part of the event type
// before the first '.', so "session.scheduled" goes to "careflow.session".
// The message UUID is the event id, the payload is the event data, and the
// envelope travels as metadata (see the Meta* keys).
//
// Transports are chosen by Config: an in-process GoChannel (the default),
// NATS JetStream, or PostgreSQL tables (watermill-sql). NewRouter builds a
// watermill Router with correlation ids, panic recovery, retries with
// exponential backoff, and a poison queue that never carries the payload.
//
// The package lives under projections/ because, like a projection, it is a
// consumer of the ordered log with a checkpoint of its own.
package bus
