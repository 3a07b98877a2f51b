package api

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the API description, served at /openapi.yaml. Its
// source of truth is api/openapi.yaml (go:embed cannot reach outside the
// package, nor follow a symlink); docs/openapi.yaml is a copy that
// TestDocsCopyOfOpenAPIIsCurrent keeps identical.
//
//go:embed openapi.yaml
var openAPIDocument []byte

// OpenAPIDocument returns a copy of the embedded OpenAPI document.
func OpenAPIDocument() []byte { return append([]byte(nil), openAPIDocument...) }

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(openAPIDocument)
}
