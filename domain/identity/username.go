package identity

import (
	"strings"

	"github.com/careflow/careflow/domain"
)

// Username limits. An e-mail address fits.
const (
	MinUsernameLength = 3
	MaxUsernameLength = 128
)

// NormalizeUsername returns the canonical form of a username: trimmed and
// lower-cased, so "Alice" and "alice " are one account. Only ASCII letters,
// digits and . _ - + @ are allowed: no look-alike Unicode names.
func NormalizeUsername(raw string) (string, error) {
	u := strings.ToLower(strings.TrimSpace(raw))
	if len(u) < MinUsernameLength || len(u) > MaxUsernameLength {
		return "", domain.Validation("invalid-username", "username",
			"username must be %d to %d characters", MinUsernameLength, MaxUsernameLength)
	}
	for _, c := range u {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("._-+@", c)
		if !ok {
			return "", domain.Validation("invalid-username", "username",
				"username may only hold letters, digits and . _ - + @")
		}
	}
	return u, nil
}
