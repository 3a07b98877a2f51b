package api

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections"
)

// AssignmentIndexName is the name of the assignment index projection.
const AssignmentIndexName = "api_assignment_index"

const assignmentIndexTable = "assignment_sessions"

// AssignmentIndex is a tiny read model mapping an assignment id to its
// session, so that /v1/assignments/{id} routes find the session stream
// that holds the assignment. It is a projection like the views (run it in
// the same runner, over the same database); an assignment never moves to
// another session, so a row is written once and never changed.
type AssignmentIndex struct{}

var _ projections.Preparer = AssignmentIndex{}

// NewAssignmentIndex returns the assignment index projection.
func NewAssignmentIndex() AssignmentIndex { return AssignmentIndex{} }

// Name implements projections.Projection.
func (AssignmentIndex) Name() string { return AssignmentIndexName }

// Version implements projections.Projection.
func (AssignmentIndex) Version() int { return 1 }

// ReadsNoMetadata implements projections.BodiesOnly.
func (AssignmentIndex) ReadsNoMetadata() {}

// Tables implements projections.Projection.
func (AssignmentIndex) Tables() []string { return []string{assignmentIndexTable} }

// Schema implements projections.Projection.
func (AssignmentIndex) Schema(t projections.TableNames) []string {
	return []string{`CREATE TABLE ` + t.Of(assignmentIndexTable) + ` (
		assignment_id TEXT PRIMARY KEY,
		session_id    TEXT NOT NULL
	)`}
}

var assignmentGivenType = care.AssignmentGiven{}.EventType()

// Apply implements projections.Projection: every assignment.given adds its
// row. Only the ids are read from the body.
func (x AssignmentIndex) Apply(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent) error {
	assignmentID, err := x.Prepare(e)
	if err != nil {
		return err
	}
	return x.ApplyPrepared(ctx, tx, t, e, assignmentID)
}

// Prepare implements projections.Preparer: it reads an assignment.given's
// assignment id (nil for every other event), before the runner's turn at
// the writer.
func (AssignmentIndex) Prepare(e eventstore.RecordedEvent) (any, error) {
	if e.Type != assignmentGivenType || e.Stream.Type != care.StreamType {
		return nil, nil
	}
	var ids struct {
		AssignmentID string `json:"assignmentId"`
	}
	if err := json.Unmarshal(e.Data, &ids); err != nil {
		return nil, fmt.Errorf("assignment index: position %d: %w", e.Position, err)
	}
	if ids.AssignmentID == "" {
		return nil, fmt.Errorf("assignment index: position %d has no assignment id", e.Position)
	}
	return ids.AssignmentID, nil
}

// ApplyPrepared implements projections.Preparer.
func (AssignmentIndex) ApplyPrepared(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent, prepared any) error {
	assignmentID, ok := prepared.(string)
	if !ok {
		return nil
	}
	// The stream is the session: it is what commands load.
	// projections.Exec prepares the statement once per batch.
	_, err := projections.Exec(ctx, tx, `INSERT INTO `+t.Of(assignmentIndexTable)+` (assignment_id, session_id)
		VALUES (?, ?) ON CONFLICT (assignment_id) DO NOTHING`, assignmentID, e.Stream.ID)
	if err != nil {
		return fmt.Errorf("assignment index: position %d: %w", e.Position, err)
	}
	return nil
}

// lookupAssignment finds the session of an assignment in the index.
func lookupAssignment(ctx context.Context, db *projections.DB, assignmentID string) (string, bool, error) {
	var sessionID string
	found := false
	err := db.Read(ctx, AssignmentIndexName, func(tx *sql.Tx, t projections.TableNames) error {
		q := db.Dialect().Rebind(`SELECT session_id FROM ` + t.Of(assignmentIndexTable) + ` WHERE assignment_id = ?`)
		switch err := tx.QueryRowContext(ctx, q, assignmentID).Scan(&sessionID); {
		case errors.Is(err, sql.ErrNoRows):
			return nil
		case err != nil:
			return err
		}
		found = true
		return nil
	})
	if err != nil {
		return "", false, fmt.Errorf("assignment index: %w", err)
	}
	return sessionID, found, nil
}
