package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// ErrRefreshInvalid: the refresh token is unknown, expired, revoked or was
// already used. One error for all, so a caller learns nothing more.
var ErrRefreshInvalid = errors.New("api: refresh token is invalid")

// RefreshSubject is whom a refresh token was issued to.
type RefreshSubject struct {
	UserID   string
	Username string
}

// RefreshTokens stores refresh tokens. Only a SHA-256 of each token is
// kept: a leaked table signs nobody in. Tokens of one sign-in form a
// family; rotating consumes a token and issues its successor in the family
// with the same expiry (an absolute session lifetime). Presenting a token
// that was already consumed is taken as theft: the whole family is revoked
// and the presenter refused.
type RefreshTokens interface {
	// Issue starts a family for s and returns its first token.
	Issue(ctx context.Context, s RefreshSubject, expires time.Time) (string, error)
	// Rotate consumes token and returns its subject, successor and expiry,
	// or ErrRefreshInvalid.
	Rotate(ctx context.Context, token string) (RefreshSubject, string, time.Time, error)
	// Revoke revokes the family of token (a sign-out). Unknown tokens are
	// ignored.
	Revoke(ctx context.Context, token string) error
	// RevokeUser revokes every family of the user (password change,
	// account disabled).
	RevokeUser(ctx context.Context, userID string) error
}

// refreshTokenBytes is the entropy of a refresh token (256 bits).
const refreshTokenBytes = 32

func hashRefresh(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// MemoryRefreshTokens is an in-process RefreshTokens, for tests and single
// process deployments that accept sign-outs on restart.
type MemoryRefreshTokens struct {
	clock func() time.Time
	mu    sync.Mutex
	rows  map[string]*refreshRow // by token hash
	ended map[string]time.Time   // by user id: see SessionEnds
}

type refreshRow struct {
	family  string
	subject RefreshSubject
	expires time.Time
	used    bool
	revoked bool
}

var _ RefreshTokens = (*MemoryRefreshTokens)(nil)

// NewMemoryRefreshTokens returns an empty store.
func NewMemoryRefreshTokens(clock func() time.Time) *MemoryRefreshTokens {
	if clock == nil {
		clock = time.Now
	}
	return &MemoryRefreshTokens{clock: clock, rows: map[string]*refreshRow{}, ended: map[string]time.Time{}}
}

func (m *MemoryRefreshTokens) Issue(_ context.Context, s RefreshSubject, expires time.Time) (string, error) {
	family, err := randomToken(16)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep()
	return m.add(family, s, expires)
}

func (m *MemoryRefreshTokens) add(family string, s RefreshSubject, expires time.Time) (string, error) {
	token, err := randomToken(refreshTokenBytes)
	if err != nil {
		return "", err
	}
	m.rows[string(hashRefresh(token))] = &refreshRow{family: family, subject: s, expires: expires}
	return token, nil
}

// sweep drops expired rows; they can no longer be used or reused.
func (m *MemoryRefreshTokens) sweep() {
	now := m.clock()
	for k, r := range m.rows {
		if !now.Before(r.expires) {
			delete(m.rows, k)
		}
	}
}

func (m *MemoryRefreshTokens) Rotate(_ context.Context, token string) (RefreshSubject, string, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rows[string(hashRefresh(token))]
	if !ok || r.revoked || !m.clock().Before(r.expires) {
		return RefreshSubject{}, "", time.Time{}, ErrRefreshInvalid
	}
	if r.used {
		m.revoke(func(o *refreshRow) bool { return o.family == r.family })
		return RefreshSubject{}, "", time.Time{}, ErrRefreshInvalid
	}
	r.used = true
	next, err := m.add(r.family, r.subject, r.expires)
	if err != nil {
		return RefreshSubject{}, "", time.Time{}, err
	}
	return r.subject, next, r.expires, nil
}

func (m *MemoryRefreshTokens) Revoke(_ context.Context, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.rows[string(hashRefresh(token))]; ok {
		m.revoke(func(o *refreshRow) bool { return o.family == r.family })
	}
	return nil
}

func (m *MemoryRefreshTokens) RevokeUser(_ context.Context, userID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.revoke(func(o *refreshRow) bool { return o.subject.UserID == userID })
	return nil
}

func (m *MemoryRefreshTokens) revoke(match func(*refreshRow) bool) {
	for _, o := range m.rows {
		if match(o) {
			o.revoked = true
		}
	}
}
