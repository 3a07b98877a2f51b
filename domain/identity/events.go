package identity

import "github.com/careflow/careflow/domain"

// AccountRegistered: a user account exists and may sign in. PasswordHash is
// an argon2id PHC string, never a password.
type AccountRegistered struct {
	UserID       string      `json:"userId"`
	Username     string      `json:"username"`
	Role         domain.Role `json:"role"`
	PasswordHash string      `json:"passwordHash"`
	ProviderID   string      `json:"providerId,omitempty"`
	ClientID     string      `json:"clientId,omitempty"`
	RegisteredBy string      `json:"registeredBy"`
}

func (AccountRegistered) EventType() string { return "account.registered" }

// AccountPasswordChanged: the account signs in with a new password from now on.
type AccountPasswordChanged struct {
	UserID       string `json:"userId"`
	PasswordHash string `json:"passwordHash"`
	ChangedBy    string `json:"changedBy"`
}

func (AccountPasswordChanged) EventType() string { return "account.password_changed" }

// AccountDisabled: the account may no longer sign in or refresh tokens.
type AccountDisabled struct {
	UserID     string `json:"userId"`
	Reason     string `json:"reason,omitempty"`
	DisabledBy string `json:"disabledBy"`
}

func (AccountDisabled) EventType() string { return "account.disabled" }

// Events lists every identity event, for the codec registry.
func Events() []domain.Event {
	return []domain.Event{AccountRegistered{}, AccountPasswordChanged{}, AccountDisabled{}}
}
