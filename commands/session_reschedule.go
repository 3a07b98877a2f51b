package commands

import (
	"context"
	"time"

	"github.com/careflow/careflow/domain/care"
)

// RescheduleSession moves a session that is neither closed nor cancelled.
// A provider on the care team may.
type RescheduleSession struct {
	SessionID string
	Start     time.Time
	Length    time.Duration // 0: keep the session's length
}

// RescheduleSession handles RescheduleSession.
func (c *Care) RescheduleSession(ctx context.Context, m Meta, cmd RescheduleSession) (Result, error) {
	res, _, err := c.inSession(ctx, m, cmd.SessionID, "reschedule sessions", partyTeam,
		func(s *care.Session) error {
			length := cmd.Length
			if length == 0 {
				length = s.End().Sub(s.Start())
			}
			p, err := care.NewPeriod(cmd.Start, length)
			if err != nil {
				return err
			}
			return s.Reschedule(p, m.Actor.ID, c.d.Clock())
		})
	return res, err
}
