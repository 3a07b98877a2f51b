package bus

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigDefaultsToGoChannelWithSaneNATSAndPostgresSettings(t *testing.T) {
	var cfg Config
	cfg.setDefaults()
	require.NoError(t, cfg.Validate())
	assert.Equal(t, TransportGoChannel, cfg.Transport)
	assert.Equal(t, "nats://127.0.0.1:4222", cfg.NATSURL)
	assert.Equal(t, "CAREFLOW", cfg.NATSStream)
	assert.Equal(t, 7*24*time.Hour, cfg.NATSMaxAge)
	assert.Equal(t, 30*time.Second, cfg.NATSAckWait)
	assert.Equal(t, 250*time.Millisecond, cfg.PostgresPollInterval)
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	nats := Config{Transport: TransportNATS, NATSURL: "http://x", NATSStream: "a.b", NATSSubjectPrefix: "x..y", NATSAckWait: -time.Second, NATSMaxAge: -time.Second}
	nats.setDefaults()
	err := nats.Validate()
	require.Error(t, err)
	for _, want := range []string{"NATSURL", "NATSStream", "NATSSubjectPrefix", "NATSAckWait", "NATSMaxAge"} {
		assert.ErrorContains(t, err, want)
	}

	pg := Config{Transport: TransportPostgres, PostgresURL: "mysql://secret@x/db", PostgresPollInterval: -1, PostgresAckDeadline: -1}
	pg.setDefaults()
	err = pg.Validate()
	require.Error(t, err)
	for _, want := range []string{"PostgresURL", "PostgresPollInterval", "PostgresAckDeadline"} {
		assert.ErrorContains(t, err, want)
	}
	assert.NotContains(t, err.Error(), "secret", "a URL may hold a password: it is not echoed")

	natsSecret := Config{Transport: TransportNATS, NATSURL: "http://user:hunter2@x"}
	natsSecret.setDefaults()
	assert.NotContains(t, natsSecret.Validate().Error(), "hunter2")

	bad := Config{Transport: "kafka"}
	bad.setDefaults()
	assert.ErrorContains(t, bad.Validate(), `"kafka"`)

	ok := Config{Transport: TransportPostgres, PostgresURL: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"}
	ok.setDefaults()
	assert.NoError(t, ok.Validate())
}

func TestNewSubscriberRefusesBadConsumerNames(t *testing.T) {
	ctx := testContext(t)
	transport, err := NewTransport(ctx, Config{}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, transport.Close()) })
	for _, name := range []string{"", "Upper", "has space", "dot.ted"} {
		_, err := transport.NewSubscriber(name)
		assert.Error(t, err, name)
	}
}
