package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// requireService skips the test outside CI when a service it needs is not
// reachable, and fails it under CI=true, where the service must be there.
func requireService(t *testing.T, name string, reachable func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound/3)
	defer cancel()
	err := reachable(ctx)
	if err == nil {
		return
	}
	reason := strings.Join(strings.Fields(err.Error()), " ") // one line
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not reachable and CI=true requires it: %s", name, reason)
	}
	t.Skipf("skipping: %s is not reachable (%s); CI=true makes this a failure", name, reason)
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

func randomSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	_, err := rand.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
