package domain_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/careflow/careflow/domain"
)

func TestErrorsMatchBySlugAndKind(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", domain.Conflict("session-closed", "session %s is closed", "s-1"))
	assert.ErrorIs(t, err, &domain.Error{Slug: "session-closed"})
	assert.NotErrorIs(t, err, &domain.Error{Slug: "session-cancelled"})
	assert.Equal(t, domain.KindConflict, domain.KindOf(err))
	assert.Equal(t, domain.Kind(0), domain.KindOf(errors.New("plain")))
}

func TestValidationErrorsUnwrapToEachField(t *testing.T) {
	var v domain.ValidationErrors
	assert.NoError(t, v.Err(), "no field errors is no error")
	v = append(v,
		domain.Validation("title-required", "title", "a session needs a title"),
		domain.Validation("repeat-out-of-range", "repeat", "repeat %d is not within 1..52", 60))
	err := v.Err()
	assert.ErrorIs(t, err, &domain.Error{Slug: "repeat-out-of-range"})
	assert.Equal(t, domain.KindValidation, domain.KindOf(err))
	var first *domain.Error
	assert.ErrorAs(t, err, &first)
	assert.Equal(t, "title", first.Field)
	assert.Contains(t, err.Error(), "2 invalid fields")
}
