package audit

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDiffJSONComparesFieldByField(t *testing.T) {
	type item struct {
		ID    string `json:"id"`
		Count int    `json:"count"`
	}
	type state struct {
		Name  string   `json:"name"`
		Note  string   `json:"note,omitempty"`
		Items []item   `json:"items"`
		Tags  []string `json:"tags"`
		Big   int64    `json:"big"`
	}
	from := state{Name: "a", Items: []item{{"x", 1}, {"y", 2}}, Tags: []string{"t1", "t2"}, Big: 1 << 60}
	to := state{Name: "a", Note: "n", Items: []item{{"x", 3}}, Tags: []string{"t1", "t2", "t3"}, Big: 1<<60 + 1}

	changes, err := diffJSON(from, to)
	require.NoError(t, err)
	assert.Equal(t, []FieldChange{
		{Path: "big", From: json.RawMessage(`1152921504606846976`), To: json.RawMessage(`1152921504606846977`)},
		{Path: "items[0].count", From: json.RawMessage(`1`), To: json.RawMessage(`3`)},
		{Path: "items[1]", From: json.RawMessage(`{"count":2,"id":"y"}`)},
		{Path: "note", To: json.RawMessage(`"n"`)},
		{Path: "tags[2]", To: json.RawMessage(`"t3"`)},
	}, changes, "sorted by key, arrays by index, absent sides left out, large numbers exact")

	same, err := diffJSON(from, from)
	require.NoError(t, err)
	assert.Empty(t, same)

	// A field changing its shape is one change of the whole field.
	shape, err := diffJSON(map[string]any{"v": []int{1}}, map[string]any{"v": map[string]int{"a": 1}})
	require.NoError(t, err)
	assert.Equal(t, []FieldChange{{Path: "v", From: json.RawMessage(`[1]`), To: json.RawMessage(`{"a":1}`)}}, shape)
}
