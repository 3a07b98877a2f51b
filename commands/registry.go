package commands

import (
	"fmt"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/domain/identity"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/domain/plans"
	"github.com/careflow/careflow/eventstore/codec"
)

// NewRegistry returns the codec registry of every domain event. Each
// domain package lists its events; this is the one place they are wired.
func NewRegistry() (*codec.Registry, error) {
	r := codec.NewRegistry()
	groups := [][]domain.Event{
		// Each domain package adds its Events() here.
		organization.Events(), books.Events(), plans.Events(), care.Events(), identity.Events(),
	}
	for _, events := range groups {
		for _, e := range events {
			if err := r.RegisterValue(e.EventType(), e); err != nil {
				return nil, fmt.Errorf("register %T: %w", e, err)
			}
		}
	}
	return r, nil
}
