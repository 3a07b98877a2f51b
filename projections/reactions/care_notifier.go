package reactions

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
	"github.com/careflow/careflow/projections/bus"
	"github.com/careflow/careflow/projections/notify"
)

// ConsumerCareNotifier is the bus consumer (and inbox) name of the care
// notifier.
const ConsumerCareNotifier = "care_notifier"

// CareNotifier tells the care team about a client's work: when a client
// completes an assignment every provider on the client's care team (as it
// is when the event is handled) gets a notification, marked urgent when
// the completion raised an urgent flag (PHQ-9 item 9).
type CareNotifier struct {
	codec         *codec.Registry
	clients       commands.ClientDirectory
	notifications *notify.Store
	logger        *slog.Logger
	// added, when set, is called after notifications were committed, so
	// they are delivered at once.
	added func()
}

// NewCareNotifier returns a notifier reading care teams from clients.
// added (may be nil) runs after a handled event added notifications.
func NewCareNotifier(c *codec.Registry, clients commands.ClientDirectory, notifications *notify.Store, logger *slog.Logger, added func()) (*CareNotifier, error) {
	if c == nil || clients == nil || notifications == nil {
		return nil, errors.New("reactions: care notifier needs a codec, a client directory and a notification store")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &CareNotifier{codec: c, clients: clients, notifications: notifications, logger: logger, added: added}, nil
}

// Handler is the bus handler for the careflow.assignment topic; the
// notifications are added in the inbox's transaction, once per event.
func (n *CareNotifier) Handler(inbox *bus.Inbox) message.NoPublishHandlerFunc {
	handle := inbox.HandleTx(ConsumerCareNotifier, func(ctx context.Context, tx *sql.Tx, msg *message.Message) error {
		e, err := bus.Decode(msg)
		if err != nil {
			return err
		}
		_, err = n.Apply(ctx, tx, e)
		return err
	})
	return func(msg *message.Message) error {
		// Only a completed assignment notifies anyone (Apply): the others
		// are acknowledged without an inbox transaction.
		if ignores(careNotifierEvents, msg) {
			return nil
		}
		if err := handle(msg); err != nil {
			return err
		}
		if n.added != nil && msg.Metadata.Get(bus.MetaType) == (care.AssignmentCompleted{}).EventType() {
			n.added()
		}
		return nil
	}
}

// careNotifierEvents are the event types Apply acts on.
var careNotifierEvents = eventTypes(care.AssignmentCompleted{})

// Apply adds the notifications e calls for through q and returns them.
func (n *CareNotifier) Apply(ctx context.Context, q Querier, e eventstore.RecordedEvent) ([]notify.Notification, error) {
	if !careNotifierEvents[e.Type] {
		return nil, nil
	}
	v, err := n.codec.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return nil, fmt.Errorf("reactions: decode %s at %d: %w", e.Type, e.Position, err)
	}
	done, ok := v.(care.AssignmentCompleted)
	if !ok {
		return nil, fmt.Errorf("reactions: %s decoded to %T", e.Type, v)
	}
	facts, err := n.clients.ClientFacts(ctx, done.ClientID)
	if domain.KindOf(err) == domain.KindNotFound {
		n.logger.Warn("completed assignment of an unknown client; nobody to notify", "event", e.ID.String())
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reactions: care team of client %s: %w", done.ClientID, err)
	}
	urgent := done.Urgent
	var flags []string
	for _, f := range done.Flags {
		urgent = urgent || f.Urgent
		if f.Kind != "" && !slices.Contains(flags, f.Kind) {
			flags = append(flags, f.Kind)
		}
	}
	if len(facts.Team) == 0 && urgent {
		n.logger.Error("urgent completion but the client has no care team to notify", "event", e.ID.String(), "client", done.ClientID)
	}
	var added []notify.Notification
	for _, provider := range facts.Team {
		note := notify.Notification{
			ID:          notify.DeriveID(notify.KindAssignmentCompleted, provider, e.ID.String()),
			RecipientID: provider, Kind: notify.KindAssignmentCompleted, Urgent: urgent,
			ClinicID: facts.ClinicID, ClientID: done.ClientID, SessionID: done.SessionID,
			AssignmentID: done.AssignmentID, BookID: done.BookID, Flags: flags,
			EventID: e.ID.String(), CreatedAt: e.RecordedAt,
		}
		isNew, err := n.notifications.Add(ctx, q, note)
		if err != nil {
			return nil, err
		}
		if isNew {
			added = append(added, note)
		}
	}
	return added, nil
}
