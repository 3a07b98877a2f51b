package api

import (
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

type openAPIOperation struct {
	Security *[]map[string][]string `yaml:"security"`
}

type openAPIDoc struct {
	OpenAPI  string                                 `yaml:"openapi"`
	Security []map[string][]string                  `yaml:"security"`
	Paths    map[string]map[string]openAPIOperation `yaml:"paths"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	require.NoError(t, yaml.Unmarshal(OpenAPIDocument(), &doc))
	return doc
}

var httpMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "patch": true, "head": true, "options": true}

// documented lists "METHOD /path" for every operation of the document.
func documented(doc openAPIDoc) map[string]openAPIOperation {
	out := map[string]openAPIOperation{}
	for path, item := range doc.Paths {
		for method, op := range item {
			if httpMethods[method] {
				out[strings.ToUpper(method)+" "+path] = op
			}
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestOpenAPIDescribesExactlyTheRegisteredRoutes fails when a route is
// added without documenting it, or documented without serving it.
func TestOpenAPIDescribesExactlyTheRegisteredRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	assert.True(t, strings.HasPrefix(doc.OpenAPI, "3.1."), doc.OpenAPI)
	ops := documented(doc)
	registered := map[string]Route{}
	for _, r := range newFixture(t).server.Routes() {
		registered[r.Pattern] = r
	}
	assert.Equal(t, sortedKeys(registered), sortedKeys(ops), "registered routes (left) and documented operations (right) differ")

	// The document's security agrees with the policies: public routes
	// say security: [], protected ones inherit the bearer requirement.
	require.Equal(t, []map[string][]string{{"bearer": {}}}, doc.Security)
	for pattern, r := range registered {
		op, ok := ops[pattern]
		if !ok {
			continue
		}
		public := op.Security != nil && len(*op.Security) == 0
		assert.Equal(t, r.Policy.Public, public, "%s: policy public=%v but the document says public=%v", pattern, r.Policy.Public, public)
	}
}

func TestOpenAPINamesEveryProblemType(t *testing.T) {
	text := string(OpenAPIDocument())
	for slug := range problemTitles {
		assert.Contains(t, text, "`"+slug+"`", "problem type %s is not documented", slug)
	}
}

// TestDocsCopyOfOpenAPIIsCurrent: docs/openapi.yaml is a copy of the
// embedded api/openapi.yaml, for readers of the docs folder. Refresh it
// with: cp api/openapi.yaml docs/openapi.yaml
func TestDocsCopyOfOpenAPIIsCurrent(t *testing.T) {
	docs, err := os.ReadFile(filepath.Join("..", "docs", "openapi.yaml"))
	require.NoError(t, err)
	assert.Equal(t, string(OpenAPIDocument()), string(docs), "docs/openapi.yaml is stale: cp api/openapi.yaml docs/openapi.yaml")
}

func TestOpenAPIIsServed(t *testing.T) {
	rec := newFixture(t).do("GET", "/openapi.yaml", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/yaml", rec.Header().Get("Content-Type"))
	assert.Equal(t, string(OpenAPIDocument()), rec.Body.String())
}

// TestOpenAPIReferencesResolve: every $ref points at something the
// document defines.
func TestOpenAPIReferencesResolve(t *testing.T) {
	var root map[string]any
	require.NoError(t, yaml.Unmarshal(OpenAPIDocument(), &root))
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if s, ok := c.(string); ok && k == "$ref" {
					refs = append(refs, s)
				}
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(root)
	require.NotEmpty(t, refs)
	for _, ref := range refs {
		path, ok := strings.CutPrefix(ref, "#/")
		require.True(t, ok, "only local references: %s", ref)
		var node any = root
		for _, part := range strings.Split(path, "/") {
			m, ok := node.(map[string]any)
			require.True(t, ok, "%s: %s is not an object", ref, part)
			node, ok = m[part]
			require.True(t, ok, "%s does not resolve", ref)
		}
	}
}
