package api

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/careflow/careflow/domain"
)

// SessionEnds keeps, per user, the instant their sessions were last ended
// by an admin: access tokens issued before it are refused, although they
// have not expired. It lives beside the refresh tokens (both
// MemoryRefreshTokens and SQLiteRefreshTokens implement it).
type SessionEnds interface {
	// EndSessions records that userID's sessions ended at at (a later
	// instant than the one kept replaces it).
	EndSessions(ctx context.Context, userID string, at time.Time) error
	// SessionsEndedAt returns the instant recorded for userID, zero when
	// their sessions were never ended.
	SessionsEndedAt(ctx context.Context, userID string) (time.Time, error)
}

var (
	_ SessionEnds = (*MemoryRefreshTokens)(nil)
	_ SessionEnds = (*SQLiteRefreshTokens)(nil)
)

func (m *MemoryRefreshTokens) EndSessions(_ context.Context, userID string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if at.After(m.ended[userID]) {
		m.ended[userID] = at
	}
	return nil
}

func (m *MemoryRefreshTokens) SessionsEndedAt(_ context.Context, userID string) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ended[userID], nil
}

func (s *SQLiteRefreshTokens) EndSessions(ctx context.Context, userID string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO session_ends (user_id, ended_at) VALUES (?, ?)
		ON CONFLICT (user_id) DO UPDATE SET ended_at = MAX(ended_at, excluded.ended_at)`, userID, at.UnixNano())
	if err != nil {
		return fmt.Errorf("refresh tokens: end sessions: %w", err)
	}
	return nil
}

func (s *SQLiteRefreshTokens) SessionsEndedAt(ctx context.Context, userID string) (time.Time, error) {
	var ns int64
	err := s.db.QueryRowContext(ctx, `SELECT ended_at FROM session_ends WHERE user_id = ?`, userID).Scan(&ns)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("refresh tokens: session end of %s: %w", userID, err)
	}
	return time.Unix(0, ns).UTC(), nil
}

// sessionGateTTL bounds how long the gate trusts what it read. Ends made
// through this process update the gate at once; the TTL only matters if
// another process shares the store.
const sessionGateTTL = 30 * time.Second

// sessionGateMax bounds the gate's memory: past it the cache is dropped
// and refilled.
const sessionGateMax = 50_000

// sessionGate answers, for every authenticated request, whether the
// token's user had their sessions ended after the token was issued. It
// caches SessionEnds per user so a request costs no database read.
type sessionGate struct {
	ends  SessionEnds
	clock func() time.Time
	mu    sync.Mutex
	cache map[string]gateEntry
}

type gateEntry struct {
	endedAt time.Time
	read    time.Time
}

func newSessionGate(ends SessionEnds, clock func() time.Time) *sessionGate {
	return &sessionGate{ends: ends, clock: clock, cache: map[string]gateEntry{}}
}

// check refuses p when its token was issued before its user's sessions
// were ended. The token's iat has whole seconds, so a token issued in the
// same second as the end is refused too (the user signs in again).
func (g *sessionGate) check(ctx context.Context, p Principal) error {
	endedAt, err := g.endedAt(ctx, p.UserID)
	if err != nil {
		return err
	}
	if !endedAt.IsZero() && !p.IssuedAt.After(endedAt.Truncate(time.Second)) {
		e := Unauthorized("the access token is invalid or expired", "invalid_token")
		e.Code, e.Cause = "session-ended", errors.New("the user's sessions were ended")
		return e
	}
	return nil
}

func (g *sessionGate) endedAt(ctx context.Context, userID string) (time.Time, error) {
	now := g.clock()
	g.mu.Lock()
	e, ok := g.cache[userID]
	g.mu.Unlock()
	if ok && now.Sub(e.read) < sessionGateTTL && !now.Before(e.read) {
		return e.endedAt, nil
	}
	at, err := g.ends.SessionsEndedAt(ctx, userID)
	if err != nil {
		return time.Time{}, err
	}
	g.remember(userID, at, now)
	return at, nil
}

func (g *sessionGate) remember(userID string, at, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.cache) >= sessionGateMax {
		g.cache = map[string]gateEntry{}
	}
	if prev, ok := g.cache[userID]; ok && prev.endedAt.After(at) {
		at = prev.endedAt
	}
	g.cache[userID] = gateEntry{endedAt: at, read: now}
}

// end ends userID's sessions now: the instant is made durable first, then
// the gate refuses their access tokens at once.
func (g *sessionGate) end(ctx context.Context, userID string) (time.Time, error) {
	now := g.clock().UTC()
	if err := g.ends.EndSessions(ctx, userID, now); err != nil {
		return time.Time{}, err
	}
	g.remember(userID, now, now)
	return now, nil
}

// sessionRoutes serve POST /v1/users/{userId}/sessions/end.
type sessionRoutes struct {
	gate    *sessionGate
	refresh RefreshTokens
}

func (s *sessionRoutes) register(rt *Router) {
	rt.HandleFunc("POST /v1/users/{userId}/sessions/end", s.endSessions)
}

// SessionsEnded answers an end of sessions.
type SessionsEnded struct {
	UserID  string    `json:"userId"`
	EndedAt time.Time `json:"endedAt"`
}

// endSessions signs a user out everywhere, at once: every refresh token
// of theirs is revoked and every access token issued so far is refused
// from now on. Ending sessions of an unknown user id records the instant
// all the same (the id may be an external identity's), so it answers 200
// either way and reveals nothing.
func (s *sessionRoutes) endSessions(w http.ResponseWriter, r *http.Request) {
	userID := r.PathValue("userId")
	if userID == "" || len(userID) > 200 {
		WriteError(w, r, domain.Validation("invalid-user", "userId", "a user id of 1 to 200 characters is required"))
		return
	}
	at, err := s.gate.end(r.Context(), userID)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if err := s.refresh.RevokeUser(r.Context(), userID); err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, SessionsEnded{UserID: userID, EndedAt: at})
}
