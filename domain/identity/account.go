package identity

import (
	"strings"

	"github.com/careflow/careflow/domain"
)

// Registration is what a new account is made of. PasswordHash comes from
// a Hasher; the aggregate never sees a password.
type Registration struct {
	UserID       string
	Username     string // already normalized
	Role         domain.Role
	PasswordHash string
	// ProviderID is required for the provider role, ClientID for the
	// client role: the account acts as that provider or client.
	ProviderID string
	ClientID   string
	By         string
}

// Account is one user account, keyed by its normalized username.
type Account struct {
	domain.Root
	userID     string
	username   string
	role       domain.Role
	hash       string
	providerID string
	clientID   string
	disabled   bool
}

// NewAccount returns an empty account to load or register into.
func NewAccount() *Account { return &Account{} }

func (a *Account) UserID() string    { return a.userID }
func (a *Account) Username() string  { return a.username }
func (a *Account) Role() domain.Role { return a.role }
func (a *Account) Exists() bool      { return a.userID != "" }
func (a *Account) Disabled() bool    { return a.disabled }

// Active reports whether the account exists and may sign in.
func (a *Account) Active() bool { return a.Exists() && !a.disabled }

// ActorID is the id the account acts under in commands: the provider or
// client id for those roles (the domain knows people by those), the user
// id for staff roles.
func (a *Account) ActorID() string {
	switch {
	case a.providerID != "":
		return a.providerID
	case a.clientID != "":
		return a.clientID
	}
	return a.userID
}

// Actor is the domain actor the account acts as.
func (a *Account) Actor() domain.Actor { return domain.Actor{ID: a.ActorID(), Role: a.role} }

// PasswordMatches verifies pw against the stored hash in constant time.
// The hash itself is never exposed.
func (a *Account) PasswordMatches(h *Hasher, pw string) (bool, error) {
	if !a.Exists() {
		h.VerifyNothing(pw)
		return false, nil
	}
	return h.Verify(pw, a.hash)
}

// Register records a new account.
func (a *Account) Register(r Registration) error {
	if a.Exists() {
		return domain.Conflict("username-taken", "the username is already taken")
	}
	var errs domain.ValidationErrors
	if strings.TrimSpace(r.UserID) == "" || len(r.UserID) > 200 {
		errs = append(errs, domain.Validation("invalid-account", "userId", "user id must be 1 to 200 characters"))
	}
	if u, err := NormalizeUsername(r.Username); err != nil || u != r.Username {
		errs = append(errs, domain.Validation("invalid-username", "username", "username must be normalized and valid"))
	}
	if !r.Role.Valid() {
		errs = append(errs, domain.Validation("invalid-role", "role", "role %q is not a known role", r.Role))
	}
	if _, _, _, err := parsePHC(r.PasswordHash); err != nil {
		errs = append(errs, domain.Validation("invalid-account", "password", "password hash is not an argon2id hash"))
	}
	errs = append(errs, checkSubject(r)...)
	if err := errs.Err(); err != nil {
		return err
	}
	a.record(AccountRegistered{
		UserID: r.UserID, Username: r.Username, Role: r.Role, PasswordHash: r.PasswordHash,
		ProviderID: r.ProviderID, ClientID: r.ClientID, RegisteredBy: r.By,
	})
	return nil
}

// checkSubject: a provider account names its provider, a client account
// its client, and no other role names either.
func checkSubject(r Registration) domain.ValidationErrors {
	var errs domain.ValidationErrors
	need := func(field, value string, wanted bool) {
		switch {
		case wanted && strings.TrimSpace(value) == "":
			errs = append(errs, domain.Validation("invalid-account", field, "a %s account needs a %s", r.Role, field))
		case !wanted && value != "":
			errs = append(errs, domain.Validation("invalid-account", field, "a %s account has no %s", r.Role, field))
		case len(value) > 200:
			errs = append(errs, domain.Validation("invalid-account", field, "%s must be at most 200 characters", field))
		}
	}
	need("providerId", r.ProviderID, r.Role == domain.RoleProvider)
	need("clientId", r.ClientID, r.Role == domain.RoleClient)
	return errs
}

// ChangePassword records a new password hash.
func (a *Account) ChangePassword(hash, by string) error {
	if !a.Exists() {
		return domain.NotFound("account-not-found", "no such account")
	}
	if a.disabled {
		return domain.Conflict("account-disabled", "the account is disabled")
	}
	if _, _, _, err := parsePHC(hash); err != nil {
		return domain.Validation("invalid-account", "password", "password hash is not an argon2id hash")
	}
	a.record(AccountPasswordChanged{UserID: a.userID, PasswordHash: hash, ChangedBy: by})
	return nil
}

// Disable stops the account signing in.
func (a *Account) Disable(reason, by string) error {
	if !a.Exists() {
		return domain.NotFound("account-not-found", "no such account")
	}
	if a.disabled {
		return domain.Conflict("account-disabled", "the account is already disabled")
	}
	if len(reason) > 1000 {
		return domain.Validation("invalid-account", "reason", "reason must be at most 1000 characters")
	}
	a.record(AccountDisabled{UserID: a.userID, Reason: reason, DisabledBy: by})
	return nil
}

// Replay applies one stored event during load.
func (a *Account) Replay(e domain.Event) {
	a.apply(e)
	a.Loaded()
}

func (a *Account) record(e domain.Event) { a.Record(e, a.apply) }

func (a *Account) apply(e domain.Event) {
	switch e := e.(type) {
	case AccountRegistered:
		a.userID, a.username, a.role, a.hash = e.UserID, e.Username, e.Role, e.PasswordHash
		a.providerID, a.clientID = e.ProviderID, e.ClientID
	case AccountPasswordChanged:
		a.hash = e.PasswordHash
	case AccountDisabled:
		a.disabled = true
	}
}
