package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// MaxBodyBytes bounds every request body (1 MiB): larger is 413.
const MaxBodyBytes = 1 << 20

// DecodeJSON reads r's body into dst strictly: at most MaxBodyBytes, one
// JSON value, no unknown fields, nothing after it, and a body must be
// there. A Content-Type, when sent, must be JSON. The error it returns is
// ready for WriteError (400, 413 or 415).
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &Error{Status: http.StatusUnsupportedMediaType, Slug: SlugUnsupportedMedia,
				Detail: "the request body must be application/json"}
		}
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	// Exactly one value: anything but whitespace after it is refused, and
	// reading on also catches a body that is too large after the value.
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		return badRequest(SlugInvalidJSON, "the request body must hold exactly one JSON value")
	default:
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return badRequest(SlugInvalidJSON, "the request body must hold exactly one JSON value")
	}
}

// jsonError explains a decoding failure without echoing the body.
func jsonError(err error) error {
	var (
		tooLarge  *http.MaxBytesError
		syntax    *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		unmarshal *json.InvalidUnmarshalError
	)
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.Is(err, io.EOF):
		return badRequest(SlugInvalidJSON, "a JSON request body is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest(SlugInvalidJSON, "the request body ends in the middle of a JSON value")
	case errors.As(err, &syntax):
		return badRequest(SlugInvalidJSON, fmt.Sprintf("the request body is not valid JSON (at byte %d)", syntax.Offset))
	case errors.As(err, &typeErr):
		field := typeErr.Field
		msg := fmt.Sprintf("must be a JSON %s", jsonKind(typeErr.Type.Kind().String()))
		if field == "" {
			return badRequest(SlugInvalidJSON, "the request body must be a JSON object")
		}
		return badRequest(SlugInvalidJSON, fmt.Sprintf("field %q %s", field, msg),
			FieldError{Field: field, Message: msg, Slug: "wrong-type"})
	case errors.As(err, &unmarshal):
		return fmt.Errorf("decode: %w", err) // a programming error: 500
	}
	// encoding/json reports an unknown field only as text.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return badRequest(SlugInvalidJSON, fmt.Sprintf("unknown field %q", name),
			FieldError{Field: name, Message: "unknown field", Slug: "unknown-field"})
	}
	return badRequest(SlugInvalidJSON, "the request body is not acceptable JSON")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct":
		return "object"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "number"
	}
	return "value of another type"
}
