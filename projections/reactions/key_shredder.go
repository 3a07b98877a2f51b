package reactions

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/projections/bus"
)

// ConsumerKeyShredder is the bus consumer name of the key shredder.
const ConsumerKeyShredder = "key_shredder"

// KeyShredderHandler destroys the data key of every client the log says was
// forgotten. ForgetClient destroys the key itself right after recording the
// erasure; this consumer is the at-least-once guarantee behind it, for a
// process that stopped in between. Destroying twice is harmless.
func KeyShredderHandler(keys commands.KeyShredder) message.NoPublishHandlerFunc {
	forgotten := (organization.ClientForgotten{}).EventType()
	return func(msg *message.Message) error {
		e, err := bus.Decode(msg)
		if err != nil {
			return err
		}
		if e.Type != forgotten {
			return nil
		}
		// The client id is in clear: no key is needed to read it.
		var body struct {
			ClientID string `json:"clientId"`
		}
		if err := json.Unmarshal(e.Data, &body); err != nil || body.ClientID == "" {
			return errors.Join(fmt.Errorf("reactions: %s at position %d names no client", e.Type, e.Position), err)
		}
		return keys.Destroy(msg.Context(), body.ClientID, e.Metadata.OccurredAt)
	}
}
