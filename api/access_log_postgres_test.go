package api

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore/postgres/pgtest"
)

// The PostgreSQL access log keeps what the SQLite one keeps: records
// survive a reopen, ids are written once, incomplete records are refused,
// concurrent records share commits and a bad one fails alone, and the
// disclosure listing filters as on SQLite.
func TestPostgresAccessLog(t *testing.T) {
	ctx := context.Background()
	dbURL := pgtest.NewDatabase(t)
	log, err := OpenPostgresAccessLog(ctx, dbURL)
	require.NoError(t, err)
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	rec := AccessRecord{ID: "r1", At: at, UserID: "u1", ActorID: "p1", Role: "provider", Method: "GET",
		Route: "GET /v1/sessions/{sessionId}", ClinicID: "c1", ClientIDs: []string{"k1", "k2", "k1"},
		Objects: map[string]string{"sessionId": "s1"}, Basis: "care_team"}
	require.NoError(t, log.Record(ctx, rec))
	require.Error(t, log.Record(ctx, rec), "a record id is written once")
	require.Error(t, log.Record(ctx, AccessRecord{ID: "r2"}), "a record needs who, when and what")
	require.NoError(t, log.Close())

	log, err = OpenPostgresAccessLog(ctx, dbURL)
	require.NoError(t, err)
	defer func() { _ = log.Close() }()
	for _, client := range []string{"k1", "k2"} {
		got, err := log.ForClient(ctx, client, 0, 10)
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Equal(t, "r1", got[0].ID)
		assert.Equal(t, []string{client}, got[0].ClientIDs)
		assert.True(t, got[0].At.Equal(at))
		assert.Equal(t, map[string]string{"sessionId": "s1"}, got[0].Objects)
		assert.Equal(t, "care_team", got[0].Basis)
	}

	const readers = 32
	errs := make([]error, readers)
	var wg sync.WaitGroup
	for i := range readers {
		wg.Go(func() {
			id := fmt.Sprintf("g%02d", i)
			if i == readers/2 {
				id = "r1" // a duplicate in the middle of the burst
			}
			errs[i] = log.Record(ctx, AccessRecord{ID: id, At: at.Add(time.Minute), UserID: "u2", ActorID: "a2",
				Role: "clinic_admin", Method: "GET", Route: "GET /v1/clients/{clientId}", ClientIDs: []string{"k1"},
				Basis: "clinic_role"})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i == readers/2 {
			assert.Error(t, err, "the duplicate fails")
		} else {
			assert.NoError(t, err, "record %d", i)
		}
	}
	got, err := log.ForClient(ctx, "k1", 0, 1000)
	require.NoError(t, err)
	assert.Len(t, got, readers, "r1 plus every good record of the burst, once")
	for i := 1; i < len(got); i++ {
		assert.Greater(t, got[i].Seq, got[i-1].Seq, "listed in order")
	}
	disclosed, err := log.Disclosures(ctx, "k1", at, 0, 1000)
	require.NoError(t, err)
	assert.Len(t, disclosed, readers-1, "the care team's read is no disclosure")
}
