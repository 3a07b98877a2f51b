package commands_test

import (
	"crypto/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/eventstore/keyring"
)

// newSealingKeyring is an in-memory keyring for tests.
func newSealingKeyring(t *testing.T) *keyring.Keyring {
	t.Helper()
	kek, _, err := keyring.GenerateKEK(rand.Reader)
	require.NoError(t, err)
	k, err := keyring.New(keyring.Config{Current: kek, Backend: keyring.NewMemoryBackend()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// clearText lists, per event type, the string fields that are stored in
// clear although they are not ids or enumerations, with the reason. Every
// other free-text field of an event that names a client must be sealed: a
// new event with a text field fails this test until it is tagged
// `phi:"sealed"` or listed here on purpose.
var clearText = map[string]string{
	"assignment.given/bookTitle":                "the book's title, the same for every client (a catalogue entry)",
	"client.forgotten/reason":                   "the erasure's legal ground, kept for the audit after the key is gone",
	"client.emergency_access_granted/grantedTo": "the id of the user given access",
}

// notSealed lists the events that name a client but seal nothing, with the
// reason.
var notSealed = map[string]string{
	"account.registered": "holds a username and a password hash; the username names the account stream (docs/security.md)",
}

// TestEveryClientTextFieldIsSealed fills every string field of every event
// that names a client with a canary and checks that the encoded event shows
// none of them, except ids and the fields listed in clearText.
func TestEveryClientTextFieldIsSealed(t *testing.T) {
	plain, err := commands.NewRegistry()
	require.NoError(t, err)
	reg := plain.WithSealer(newSealingKeyring(t))
	checked := 0
	for _, name := range reg.Names() {
		typ, ok := plain.TypeOf(name)
		require.True(t, ok)
		clientField, hasClient := typ.FieldByName("ClientID")
		if _, ok := notSealed[name]; ok || !hasClient || clientField.Tag.Get("phi") != "subject" {
			assert.True(t, !hasClient || ok, "%s names a client but its ClientID is not the phi subject", name)
			continue
		}
		v := reflect.New(typ).Elem()
		canaries := map[string]string{}
		for i := range typ.NumField() {
			f := typ.Field(i)
			if f.Type.Kind() != reflect.String || isIdentifier(f.Name) || f.Type.Name() != "string" {
				continue // ids and typed enumerations (roles, kinds) stay in clear
			}
			jsonName, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			canary := "CANARY-" + strings.ToUpper(jsonName) + "-TEXT"
			v.Field(i).SetString(canary)
			canaries[jsonName] = canary
		}
		v.FieldByName("ClientID").SetString("client-1")
		_, _, data, err := reg.Encode(v.Interface())
		require.NoError(t, err, name)
		for field, canary := range canaries {
			if _, allowed := clearText[name+"/"+field]; allowed {
				continue
			}
			assert.NotContains(t, string(data), canary, "%s.%s is stored in clear: tag it phi:\"sealed\" or list it in clearText", name, field)
		}
		back, err := reg.Decode(name, 1, data)
		require.NoError(t, err)
		assert.Equal(t, v.Interface(), back, "%s round-trips", name)
		checked++
	}
	assert.GreaterOrEqual(t, checked, 15, "the care and client events were checked")
}

func isIdentifier(field string) bool {
	return strings.HasSuffix(field, "ID") || field == "By" || strings.HasSuffix(field, "By")
}
