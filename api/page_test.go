package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPageByIDWalksTheListOnce(t *testing.T) {
	items := []string{"a", "b", "c", "d", "e"}
	id := func(s string) string { return s }
	for _, limit := range []int{1, 2, 4, 5, 6} {
		var got []string
		page := Page{Limit: limit}
		for range 10 {
			out, err := pageByID(items, page, id)
			require.NoError(t, err)
			assert.LessOrEqual(t, len(out.Items), limit)
			got = append(got, out.Items...)
			if out.NextCursor == "" {
				break
			}
			page.After, err = decodeCursor([]string{out.NextCursor})
			require.NoError(t, err)
		}
		assert.Equal(t, items, got, "limit %d", limit)
	}
	empty, err := pageByID([]string{}, Page{Limit: 3}, id)
	require.NoError(t, err)
	assert.Equal(t, []string{}, empty.Items, "an empty list is [], not null")

	_, err = pageByID(items, Page{Limit: 2, After: "zz"}, id)
	var apiErr *Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusBadRequest, apiErr.Status)
}
