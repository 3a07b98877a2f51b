package reactions

import (
	"context"
	"database/sql"
	"reflect"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections/bus"
)

// untouchable is a Querier that records any use.
type untouchable struct{ used []string }

func (q *untouchable) ExecContext(_ context.Context, query string, _ ...any) (sql.Result, error) {
	q.used = append(q.used, query)
	return nil, context.Canceled
}

func (q *untouchable) QueryContext(_ context.Context, query string, _ ...any) (*sql.Rows, error) {
	q.used = append(q.used, query)
	return nil, context.Canceled
}

func (q *untouchable) QueryRowContext(_ context.Context, query string, _ ...any) *sql.Row {
	q.used = append(q.used, query)
	return &sql.Row{}
}

// Every event type the handlers skip is one their Apply does nothing with:
// each registered type outside the filter, as a care-session event, leaves
// the database untouched and fails nothing.
func TestReactorsIgnoreOnlyEventsApplyIgnores(t *testing.T) {
	w := newWorld(t)
	applies := map[string]struct {
		wants map[string]bool
		apply func(Querier, eventstore.RecordedEvent) error
	}{
		"time reactor": {timeReactorEvents, func(q Querier, e eventstore.RecordedEvent) error {
			return w.r.reactor.Apply(w.ctx, q, e)
		}},
		"care notifier": {careNotifierEvents, func(q Querier, e eventstore.RecordedEvent) error {
			_, err := w.r.notifier.Apply(w.ctx, q, e)
			return err
		}},
	}
	skipped := 0
	for name, a := range applies {
		for _, typ := range w.codec.Names() {
			if a.wants[typ] {
				continue
			}
			rt, ok := w.codec.TypeOf(typ)
			require.True(t, ok, typ)
			encoded, version, data, err := w.codec.Encode(reflect.New(rt).Elem().Interface())
			require.NoError(t, err, typ)
			require.Equal(t, typ, encoded)
			q := &untouchable{}
			err = a.apply(q, eventstore.RecordedEvent{
				Stream: eventstore.NewStreamID(care.StreamType, "s-1"), Version: 3, Position: 9, Type: typ,
				SchemaVersion: version, Data: data, RecordedAt: time.Now(),
				Metadata: eventstore.Metadata{ClinicID: w.clinic},
			})
			assert.NoError(t, err, "%s: %s", name, typ)
			assert.Empty(t, q.used, "%s acts on %s, which its handler skips", name, typ)
			skipped++
		}
	}
	assert.Greater(t, skipped, 20, "the registry's types were checked")
}

// A skipped event is acknowledged without an inbox row; a wanted one is
// recorded; a message without a type is not skipped (it is refused).
func TestReactorHandlersSkipOtherEvents(t *testing.T) {
	w := newWorld(t)
	msg := func(typ string) *message.Message {
		m := message.NewMessage("0190c3d2-7f4a-7b8e-9c1d-2e3f4a5b6c7d", []byte(`{}`))
		if typ != "" {
			m.Metadata.Set(bus.MetaType, typ)
		}
		return m
	}
	handler := w.r.reactor.Handler(w.r.inbox)
	require.NoError(t, handler(msg((care.SessionMessagePosted{}).EventType())))
	seen, err := w.r.inbox.Seen(w.ctx, ConsumerTimeReactor, "0190c3d2-7f4a-7b8e-9c1d-2e3f4a5b6c7d")
	require.NoError(t, err)
	assert.False(t, seen, "a skipped event leaves no inbox row")
	assert.Error(t, handler(msg("")), "a message without a type is refused, not skipped")
}
