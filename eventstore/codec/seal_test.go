package codec_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testSealer is an AES-GCM sealer with one random key per subject in
// memory; destroy forgets a key. The real one is eventstore/keyring.
type testSealer struct {
	mu        sync.Mutex
	keys      map[string]cipher.AEAD
	destroyed map[string]bool
}

func newTestSealer() *testSealer {
	return &testSealer{keys: map[string]cipher.AEAD{}, destroyed: map[string]bool{}}
}

func (s *testSealer) aead(subject string, create bool) (cipher.AEAD, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed[subject] {
		return nil, fmt.Errorf("subject %s: %w", subject, eventstore.ErrKeyDestroyed)
	}
	if a, ok := s.keys[subject]; ok || !create {
		if !ok {
			return nil, fmt.Errorf("subject %s has no key", subject)
		}
		return a, nil
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	block, _ := aes.NewCipher(key)
	a, _ := cipher.NewGCM(block)
	s.keys[subject] = a
	return a, nil
}

func (s *testSealer) Seal(subject string, plaintext, aad []byte) ([]byte, error) {
	a, err := s.aead(subject, true)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, a.NonceSize())
	_, _ = rand.Read(nonce)
	return a.Seal(nonce, nonce, plaintext, aad), nil
}

func (s *testSealer) Open(subject string, sealed, aad []byte) ([]byte, error) {
	a, err := s.aead(subject, false)
	if err != nil {
		return nil, err
	}
	n := a.NonceSize()
	return a.Open(nil, sealed[:n], sealed[n:], aad)
}

func (s *testSealer) destroy(subject string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, subject)
	s.destroyed[subject] = true
}

type answer struct {
	Item  string `json:"item"`
	Value int    `json:"value"`
}

type messagePosted struct {
	ClientID  string   `json:"clientId" phi:"subject"`
	MessageID string   `json:"messageId"`
	Text      string   `json:"text" phi:"sealed"`
	Answers   []answer `json:"answers,omitempty" phi:"sealed"`
	Total     int      `json:"total" phi:"sealed"`
}

type otherPosted struct {
	ClientID string `json:"clientId" phi:"subject"`
	Text     string `json:"text" phi:"sealed"`
}

func sealedRegistry(t *testing.T) (*codec.Registry, *codec.Registry, *testSealer) {
	t.Helper()
	plain := codec.NewRegistry()
	require.NoError(t, codec.Register[messagePosted](plain, "message.posted"))
	require.NoError(t, codec.Register[otherPosted](plain, "other.posted"))
	s := newTestSealer()
	return plain, plain.WithSealer(s), s
}

func TestSealedFieldsAreNotInClearAndRoundTrip(t *testing.T) {
	_, reg, _ := sealedRegistry(t)
	in := messagePosted{ClientID: "c-1", MessageID: "m-1", Text: "CANARY feeling low", Answers: []answer{{"q9", 3}}, Total: 21}

	_, _, data, err := reg.Encode(in)
	require.NoError(t, err)
	assert.NotContains(t, string(data), "CANARY")
	assert.NotContains(t, string(data), `"q9"`)
	assert.NotContains(t, string(data), `"total":`, "the score is sealed too")
	assert.Contains(t, string(data), `"clientId":"c-1"`, "ids stay in clear for audits")
	assert.Contains(t, string(data), `"messageId":"m-1"`)

	out, err := reg.Decode("message.posted", 1, data)
	require.NoError(t, err)
	assert.Equal(t, in, out)
}

func TestARegistryWithoutSealerRefusesSealedEvents(t *testing.T) {
	plain, reg, _ := sealedRegistry(t)
	_, _, data, err := reg.Encode(messagePosted{ClientID: "c-1", Text: "secret"})
	require.NoError(t, err)

	_, err = plain.Decode("message.posted", 1, data)
	assert.ErrorContains(t, err, "no sealer", "sealed PHI must never decode as silently missing")
}

func TestDestroyedKeyRedactsOnlyThatSubject(t *testing.T) {
	_, reg, sealer := sealedRegistry(t)
	_, _, forgotten, err := reg.Encode(messagePosted{ClientID: "c-1", MessageID: "m-1", Text: "mine", Answers: []answer{{"q1", 2}}, Total: 5})
	require.NoError(t, err)
	_, _, kept, err := reg.Encode(messagePosted{ClientID: "c-2", MessageID: "m-2", Text: "theirs"})
	require.NoError(t, err)

	sealer.destroy("c-1")

	out, err := reg.Decode("message.posted", 1, forgotten)
	require.NoError(t, err, "a forgotten client's events still replay")
	assert.Equal(t, messagePosted{ClientID: "c-1", MessageID: "m-1", Text: eventstore.Redacted}, out)
	out, err = reg.Decode("message.posted", 1, kept)
	require.NoError(t, err)
	assert.Equal(t, "theirs", out.(messagePosted).Text)

	_, _, _, err = reg.Encode(messagePosted{ClientID: "c-1", Text: "new"})
	assert.ErrorIs(t, err, eventstore.ErrKeyDestroyed, "nothing new is sealed for a forgotten client")
}

func TestEnvelopeIsBoundToItsEventType(t *testing.T) {
	_, reg, _ := sealedRegistry(t)
	_, _, data, err := reg.Encode(messagePosted{ClientID: "c-1", Text: "x"})
	require.NoError(t, err)

	_, err = reg.Decode("other.posted", 1, data)
	assert.Error(t, err, "an envelope pasted into another event type must not open")
}

func TestNoSubjectNoSealing(t *testing.T) {
	_, reg, _ := sealedRegistry(t)
	_, _, data, err := reg.Encode(otherPosted{Text: "staff text"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"clientId":"","text":"staff text"}`, string(data))
}

func TestUpcastersSeeOpenedFields(t *testing.T) {
	old := codec.NewRegistry()
	require.NoError(t, codec.Register[otherPosted](old, "note"))
	s := newTestSealer()
	_, _, data, err := old.WithSealer(s).Encode(otherPosted{ClientID: "c-1", Text: "hello"})
	require.NoError(t, err)

	type noteV2 struct {
		ClientID string `json:"clientId" phi:"subject"`
		Body     string `json:"body" phi:"sealed"`
	}
	cur := codec.NewRegistry()
	require.NoError(t, codec.RegisterVersion[noteV2](cur, "note", 2))
	require.NoError(t, cur.AddUpcaster("note", 1, func(d json.RawMessage) (json.RawMessage, error) {
		var m map[string]any
		if err := json.Unmarshal(d, &m); err != nil {
			return nil, err
		}
		m["body"] = m["text"]
		delete(m, "text")
		return json.Marshal(m)
	}))
	out, err := cur.WithSealer(s).Decode("note", 1, data)
	require.NoError(t, err)
	assert.Equal(t, noteV2{ClientID: "c-1", Body: "hello"}, out)
}

func TestPhiTagsAreChecked(t *testing.T) {
	type noSubject struct {
		Text string `json:"text" phi:"sealed"`
	}
	type badTag struct {
		ClientID string `json:"clientId" phi:"subject"`
		Text     string `json:"text" phi:"secret"`
	}
	type unnamed struct {
		ClientID string `json:"clientId" phi:"subject"`
		Text     string `phi:"sealed"`
	}
	r := codec.NewRegistry()
	assert.ErrorContains(t, codec.Register[noSubject](r, "a"), "no phi subject")
	assert.ErrorContains(t, codec.Register[badTag](r, "b"), "neither subject nor sealed")
	assert.ErrorContains(t, codec.Register[unnamed](r, "c"), "JSON name")
}
