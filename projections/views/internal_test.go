package views

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections"
)

func recorded(t *testing.T, position int64, v care.SessionActivated) eventstore.RecordedEvent {
	t.Helper()
	reg, err := commands.NewRegistry()
	require.NoError(t, err)
	name, version, data, err := reg.Encode(v)
	require.NoError(t, err)
	return eventstore.RecordedEvent{ID: uuid.New(), Position: position, Type: name, SchemaVersion: version, Data: data}
}

// TestDecoderSharesUntilEveryReaderTookIt: the decoder keeps a decoded
// event for the other projections that read its type and lets it go once
// they all took it.
func TestDecoderSharesUntilEveryReaderTookIt(t *testing.T) {
	reg, err := commands.NewRegistry()
	require.NoError(t, err)
	dec := newDecoder(reg)
	activated := care.SessionActivated{}.EventType()
	dec.share(types(activated))
	dec.share(types(activated))
	dec.share(types(activated))

	e := recorded(t, 7, care.SessionActivated{SessionID: "s1", ClientID: "k1", At: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)})
	slot := func() decoded { return dec.ring[uint64(e.Position)%decodeRing] }
	v, err := dec.decode(e)
	require.NoError(t, err)
	assert.Equal(t, "s1", v.(care.SessionActivated).SessionID)
	assert.Equal(t, 2, slot().pending, "two more readers")
	_, err = dec.decode(e)
	require.NoError(t, err)
	assert.Equal(t, 1, slot().pending)
	again, err := dec.decode(e)
	require.NoError(t, err)
	assert.Equal(t, v, again)
	assert.Nil(t, slot().value, "released once every reader took it")

	// Another event at a position that maps to the same slot is decoded
	// on its own, never confused with the one before.
	other := recorded(t, 7+decodeRing, care.SessionActivated{SessionID: "s2", ClientID: "k1"})
	v, err = dec.decode(other)
	require.NoError(t, err)
	assert.Equal(t, "s2", v.(care.SessionActivated).SessionID)
	v, err = dec.decode(e)
	require.NoError(t, err)
	assert.Equal(t, "s1", v.(care.SessionActivated).SessionID)
}

// TestDecoderAloneHoldsNothing: a projection with a decoder of its own
// keeps no decoded event.
func TestDecoderAloneHoldsNothing(t *testing.T) {
	reg, err := commands.NewRegistry()
	require.NoError(t, err)
	dec := newDecoder(reg)
	dec.share(types(care.SessionActivated{}.EventType()))
	_, err = dec.decode(recorded(t, 1, care.SessionActivated{SessionID: "s1"}))
	require.NoError(t, err)
	assert.Nil(t, dec.ring)
}

func TestRenderNamesTables(t *testing.T) {
	var names projections.TableNames
	assert.Panics(t, func() { render(names, `SELECT * FROM {unknown}`) }, "an undeclared table is a programming error")
	assert.Equal(t, "SELECT 1", render(names, "SELECT 1"))
}

func TestSealedTextIsThePrefixAndTheBase64OfTheWhole(t *testing.T) {
	sealed := make([]byte, 200)
	for i := range sealed {
		sealed[i] = byte(i*7 + 3)
	}
	for n := 0; n <= len(sealed); n++ {
		want := sealedPrefix + base64.RawStdEncoding.EncodeToString(sealed[:n])
		require.Equal(t, want, sealedText(sealed[:n]), "%d bytes", n)
	}
}
