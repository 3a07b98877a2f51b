package api

import (
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkCareSessionRead is GET /v1/sessions/{id} through the whole
// server: token check, authorization from the organization streams, the
// session stream read, the read model, and a durable (fsynced) access
// record.
func BenchmarkCareSessionRead(b *testing.B) {
	w := newCareWorld(b)
	sched, _ := w.scheduleForK1(1)
	path := "/v1/sessions/" + sched.Sessions[0].ID
	auth := w.bearer(w.p1)
	b.ResetTimer()
	for b.Loop() {
		rec := w.do(anonymous, "GET", path, nil, "Authorization", auth)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	}
}

// BenchmarkCareSchedule is POST /v1/sessions for one session with a
// PHQ-9 through the whole server.
func BenchmarkCareSchedule(b *testing.B) {
	w := newCareWorld(b)
	body := map[string]any{"clientId": w.k1.ID, "title": "Mood check", "startsAt": w.clock.Now().Add(24 * time.Hour),
		"bookIds": []string{"phq-9"}}
	auth := w.bearer(w.p1)
	b.ResetTimer()
	for b.Loop() {
		rec := w.do(anonymous, "POST", "/v1/sessions", body, "Authorization", auth)
		if rec.Code != http.StatusCreated {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	}
}

// BenchmarkSQLiteAccessLogRecord is one durable access record (WAL,
// synchronous=FULL): the price every PHI read pays.
func BenchmarkSQLiteAccessLogRecord(b *testing.B) {
	ctx := context.Background()
	log, err := OpenSQLiteAccessLog(ctx, filepath.Join(b.TempDir(), "access.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = log.Close() }()
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	n := 0
	for b.Loop() {
		n++
		rec := AccessRecord{ID: strconv.Itoa(n), At: at, UserID: "u1", ActorID: "p1", Role: "provider", Method: "GET",
			Route: "GET /v1/sessions/{sessionId}", ClientIDs: []string{"k1"}, Objects: map[string]string{"sessionId": "s1"}}
		if err := log.Record(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
}
