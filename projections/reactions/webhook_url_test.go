package reactions

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWebhookURLsMayNotReachInternalTargets(t *testing.T) {
	for _, raw := range []string{
		"https://127.0.0.1/hook", "https://localhost:8443/hook", "https://10.1.2.3/hook", "https://192.168.0.9/hook",
		"https://172.16.5.5/hook", "https://169.254.169.254/latest/meta-data", "https://[::1]/hook", "https://0.0.0.0/hook",
		"http://127.0.0.1:5432/", "http://hooks.example.org/hook",
	} {
		_, err := ValidateWebhookURL(raw, false)
		assert.Error(t, err, raw)
	}
	clean, err := ValidateWebhookURL("HTTPS://Hooks.Example.org/careflow", false)
	require.NoError(t, err)
	assert.Equal(t, "https://hooks.example.org/careflow", clean)

	// Development and tests may allow a receiver on this machine.
	_, err = ValidateWebhookURL("http://127.0.0.1:9000/hook", true)
	assert.NoError(t, err)
	_, err = ValidateWebhookURL("http://hooks.example.org/hook", true)
	assert.Error(t, err, "plain http only ever to loopback")
}

func TestDialerRefusesInternalAddresses(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:443", "10.0.0.1:443", "[fd00::1]:443", "169.254.169.254:80"} {
		assert.Error(t, refuseInternalAddress("tcp", addr, nil), addr)
	}
	assert.NoError(t, refuseInternalAddress("tcp", "93.184.216.34:443", nil))
}
