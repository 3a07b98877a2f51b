package commands_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
)

// BenchmarkDecodeEvent measures the registry decoding two common bodies
// (ADR 0016), beside encoding/json decoding the same bytes into the same
// type: decoding every event is a rebuild's largest share of work after
// writing the read models.
func BenchmarkDecodeEvent(b *testing.B) {
	reg, err := commands.NewRegistry()
	require.NoError(b, err)
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	answers := make([]books.Answer, 9)
	for i := range answers {
		answers[i] = books.Answer{ItemID: "phq9-" + string(rune('1'+i)), Value: i % 4}
	}
	events := map[string]any{
		"message": care.SessionMessagePosted{SessionID: "0190c3d2-aaaa-bbbb-cccc-000000000001",
			ClientID: "0190c3d2-aaaa-bbbb-cccc-000000000002", MessageID: "0190c3d2-aaaa-bbbb-cccc-000000000003",
			AuthorID: "0190c3d2-aaaa-bbbb-cccc-000000000004", AuthorRole: domain.RoleClient,
			Text: "It was a hard week, but the breathing exercise helped on Tuesday.", At: at},
		"completed": care.AssignmentCompleted{SessionID: "0190c3d2-aaaa-bbbb-cccc-000000000001",
			ClientID: "0190c3d2-aaaa-bbbb-cccc-000000000002", ProviderID: "0190c3d2-aaaa-bbbb-cccc-000000000004",
			AssignmentID: "0190c3d2-aaaa-bbbb-cccc-000000000005", BookID: "phq-9", BookVersion: 1, Answers: answers,
			Scored: true, Total: 12, Severity: "moderate", At: at},
	}
	for name, event := range events {
		typ, version, data, err := reg.Encode(event)
		require.NoError(b, err)
		decoded, err := reg.Decode(typ, version, data)
		require.NoError(b, err)
		require.Equal(b, event, decoded)
		b.Run(name+"/registry", func(b *testing.B) {
			for b.Loop() {
				if _, err := reg.Decode(typ, version, data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/encoding-json", func(b *testing.B) {
			for b.Loop() {
				switch event.(type) {
				case care.SessionMessagePosted:
					var v care.SessionMessagePosted
					require.NoError(b, json.Unmarshal(data, &v))
				case care.AssignmentCompleted:
					var v care.AssignmentCompleted
					require.NoError(b, json.Unmarshal(data, &v))
				}
			}
		})
	}
}
