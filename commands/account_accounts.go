package commands

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/identity"
	"github.com/careflow/careflow/eventstore"
)

// StreamAccount is the stream type of user accounts.
const StreamAccount = "account"

// accountNamespace derives an account's stream id from its normalized
// username: the same username always names the same stream, so the store's
// expected-version check (the stream must not exist yet) is what makes
// usernames unique, and the username itself never appears in a stream id.
var accountNamespace = uuid.MustParse("0d8c5b7e-53f4-4a8e-9a43-2f1c7f6b9e21")

// AccountStream returns the stream of the account with the normalized
// username.
func AccountStream(username string) eventstore.StreamID {
	return eventstore.NewStreamID(StreamAccount, uuid.NewSHA1(accountNamespace, []byte(username)).String())
}

// Accounts handles the account commands and password checks.
type Accounts struct {
	d      Deps
	hasher *identity.Hasher
}

// NewAccounts returns the account handlers over d, hashing with hasher.
func NewAccounts(d Deps, hasher *identity.Hasher) *Accounts { return &Accounts{d: d, hasher: hasher} }

// errInvalidCredentials is the one answer to every failed sign-in: it does
// not say whether the username exists, is disabled or the password is wrong.
func errInvalidCredentials() error {
	return &domain.Error{Kind: domain.KindUnauthorized, Slug: "invalid-credentials", Message: "the username or password is wrong"}
}

func accountNotFound() error { return domain.NotFound("account-not-found", "no such account") }

// Account returns the account with the username, or account-not-found.
func (s *Accounts) Account(ctx context.Context, username string) (*identity.Account, error) {
	u, err := identity.NormalizeUsername(username)
	if err != nil {
		return nil, accountNotFound()
	}
	return loadExisting(ctx, s.d, AccountStream(u), identity.NewAccount, accountNotFound())
}

// StaleVersionError: the command was issued against a version of the
// stream (an HTTP If-Match) that is no longer current. The API answers 412.
// Unlike eventstore.ErrConcurrency it is not retried: the caller decided on
// state it must reload.
type StaleVersionError struct {
	Stream   eventstore.StreamID
	Expected int64
	Actual   int64
}

func (e *StaleVersionError) Error() string {
	return fmt.Sprintf("commands: %s is at version %d, not the expected %d", e.Stream, e.Actual, e.Expected)
}

// checkVersion refuses a decision on a stream not at the version the
// caller expects (0: no expectation).
func checkVersion(stream eventstore.StreamID, expected, actual int64) error {
	if expected > 0 && expected != actual {
		return &StaleVersionError{Stream: stream, Expected: expected, Actual: actual}
	}
	return nil
}

// hashNew validates and hashes a new password.
func (s *Accounts) hashNew(field, password string) (string, error) {
	if err := identity.CheckPassword(field, password); err != nil {
		return "", err
	}
	return s.hasher.Hash(password)
}
