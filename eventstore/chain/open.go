package chain

import (
	"context"
	"fmt"
)

// Open opens the chain table for an event store given the way careflow's
// configuration names it: kind "sqlite" with the database file path, or
// kind "postgres" with the database URL.
func Open(ctx context.Context, kind, location string) (Table, error) {
	// Each case returns its own nil on failure, never a typed nil in the
	// interface.
	switch kind {
	case "sqlite":
		t, err := OpenSQLite(ctx, location)
		if err != nil {
			return nil, err
		}
		return t, nil
	case "postgres", "postgresql":
		t, err := OpenPostgres(ctx, location)
		if err != nil {
			return nil, err
		}
		return t, nil
	default:
		return nil, fmt.Errorf("chain: unknown event store kind %q (want sqlite or postgres)", kind)
	}
}
