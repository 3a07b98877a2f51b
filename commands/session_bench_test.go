package commands_test

import (
	"fmt"
	"testing"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
)

// BenchmarkCarePostMessage measures one care command end to end on the
// memory store (authorize through the organization's streams, load the
// session, decide, append) for sessions whose streams already hold history
// events. The loop spreads over many sessions so their streams barely grow
// while it runs.
func BenchmarkCarePostMessage(b *testing.B) {
	const sessions = 64
	for _, history := range []int{0, 100, 1000} {
		b.Run(fmt.Sprintf("history=%d", history), func(b *testing.B) {
			w := newCareWorld(b)
			ids := make([]string, sessions)
			for i := range ids {
				ids[i] = w.scheduleWithHistory(b, i, history)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := w.care.PostMessage(w.ctx, careMeta(w.k1), commands.PostMessage{SessionID: ids[i%sessions], Text: "hello"}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// scheduleWithHistory schedules a session and appends history messages to
// its stream directly (quicker than through the handler).
func (w *careWorld) scheduleWithHistory(b *testing.B, n, history int) string {
	res, err := w.care.ScheduleSession(w.ctx, careMeta(w.p1), commands.ScheduleSession{ClientID: w.k1.ID, Title: "s", Start: careStart, Homework: []string{books.PHQ9ID}})
	if err != nil {
		b.Fatal(err)
	}
	id := res.Sessions[0].ID
	batch := make([]eventstore.NewEvent, 0, history)
	for i := range history {
		e := care.SessionMessagePosted{SessionID: id, ClientID: w.k1.ID, MessageID: fmt.Sprintf("m-%d-%d", n, i),
			AuthorID: w.p1.ID, AuthorRole: domain.RoleProvider, Text: "earlier", At: w.clock()}
		name, v, data, err := w.deps.Codec.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, eventstore.NewEvent{Type: name, SchemaVersion: v, Data: data, Metadata: eventstore.Metadata{OccurredAt: w.clock()}})
	}
	if len(batch) > 0 {
		if _, err := w.store.Append(w.ctx, eventstore.NewStreamID(care.StreamType, id), eventstore.Exactly(res.Version), batch); err != nil {
			b.Fatal(err)
		}
	}
	return id
}

// BenchmarkCareScheduleSeries measures scheduling a 12-session series with
// two homework books each (12 streams written).
func BenchmarkCareScheduleSeries(b *testing.B) {
	w := newCareWorld(b)
	b.ReportAllocs()
	for b.Loop() {
		_, err := w.care.ScheduleSession(w.ctx, careMeta(w.p1), commands.ScheduleSession{
			ClientID: w.k1.ID, Title: "Weekly", Start: careStart, Repeat: 12, Homework: []string{books.PHQ9ID, books.GAD7ID},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
