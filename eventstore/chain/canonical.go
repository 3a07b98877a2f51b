package chain

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/careflow/careflow/eventstore"
)

// canonicalVersion opens every canonical form. A change to the layout (a new
// envelope or metadata field) must change it, so old and new forms can never
// be confused.
const canonicalVersion = "careflow/event/v1"

// Tags in front of the data field: which form the data was written in.
const (
	dataCanonicalJSON byte = 'J'
	dataRaw           byte = 'R'
)

// Canonical is the byte form of an event the chain hashes. It depends only
// on what the event means, not on how a backend stores it, so the same
// event gives the same bytes on SQLite and PostgreSQL.
//
// Layout (all integers big-endian; a "string" is a uint32 byte length then
// the bytes):
//
//	string  "careflow/event/v1"
//	16 B    event id
//	string  stream type
//	string  stream id
//	int64   version
//	int64   position
//	string  type
//	int64   schema version
//	byte    'J' then string canonical JSON of data, or 'R' then string raw data
//	string  actor id, actor role, command id, correlation id, causation id, clinic id
//	byte    0 (no occurred-at) or 1 then int64 occurred-at in unix microseconds
//	int64   recorded-at in unix microseconds
//
// Times are cut to microseconds (toward the past) because PostgreSQL keeps
// no more. Data is canonical JSON (see CanonicalJSON) when it is a JSON
// value that decodes without loss; otherwise (invalid UTF-8, lone
// surrogates, numbers beyond range) it is hashed as the raw bytes, which
// still pins it exactly.
func Canonical(e eventstore.RecordedEvent) []byte {
	b := make([]byte, 0, 256+len(e.Data))
	b = appendString(b, canonicalVersion)
	b = append(b, e.ID[:]...)
	b = appendString(b, e.Stream.Type)
	b = appendString(b, e.Stream.ID)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Version))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Position))
	b = appendString(b, e.Type)
	b = binary.BigEndian.AppendUint64(b, uint64(int64(e.SchemaVersion)))
	if data, err := CanonicalJSON(e.Data); err == nil {
		b = append(b, dataCanonicalJSON)
		b = appendBytes(b, data)
	} else {
		b = append(b, dataRaw)
		b = appendBytes(b, e.Data)
	}
	m := e.Metadata
	for _, s := range []string{m.ActorID, m.ActorRole, m.CommandID, m.CorrelationID, m.CausationID, m.ClinicID} {
		b = appendString(b, s)
	}
	if m.OccurredAt.IsZero() {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.BigEndian.AppendUint64(b, uint64(micros(m.OccurredAt)))
	}
	b = binary.BigEndian.AppendUint64(b, uint64(micros(e.RecordedAt)))
	return b
}

// micros is t in unix microseconds, rounded toward the past like
// PostgreSQL's storage of a Go time.
func micros(t time.Time) int64 { return t.UnixMicro() }

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendBytes(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// CanonicalJSON rewrites a JSON value in one fixed form: object keys sorted
// by their UTF-8 bytes (for a repeated key the last one counts, as in
// encoding/json and PostgreSQL's jsonb), no whitespace, strings escaped
// only where JSON requires it (quote, backslash, control characters as
// \u00xx), numbers as their exact decimal value in the shortest form
// (1.50, 15e-1 and 1.5 are all "15e-1"; 100 and 1e2 are "100"). These are
// the differences a backend may introduce (jsonb reorders keys, drops
// whitespace, re-spells numbers and escapes), none of which changes what
// the event says.
//
// It fails for input that is not JSON or that encoding/json would decode
// with loss (invalid UTF-8, lone surrogates: both become U+FFFD), so two
// different inputs never share a canonical form.
func CanonicalJSON(data []byte) ([]byte, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("chain: data is not valid UTF-8")
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("chain: data is not valid JSON")
	}
	if hasLoneSurrogate(data) {
		return nil, fmt.Errorf("chain: data holds a lone UTF-16 surrogate escape")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("chain: decode data: %w", err)
	}
	return appendCanonical(make([]byte, 0, len(data)), v)
}

// hasLoneSurrogate reports whether valid JSON text holds a \uXXXX escape of
// a UTF-16 surrogate that is not part of a pair: encoding/json decodes each
// of them to U+FFFD, which would give different inputs one form. In valid
// JSON a backslash only occurs inside strings, so no string tracking is
// needed.
func hasLoneSurrogate(data []byte) bool {
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		if data[i+1] != 'u' {
			i++ // a one-letter escape, possibly an escaped backslash
			continue
		}
		r := hex4(data[i+2 : i+6])
		i += 5
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		case r >= 0xD800 && r <= 0xDBFF:
			if i+6 >= len(data) || data[i+1] != '\\' || data[i+2] != 'u' {
				return true
			}
			if low := hex4(data[i+3 : i+7]); low < 0xDC00 || low > 0xDFFF {
				return true
			}
			i += 6
		}
	}
	return false
}

// hex4 reads four hex digits (valid JSON guarantees them).
func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

func appendCanonical(b []byte, v any) ([]byte, error) {
	var err error
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case json.Number:
		return appendNumber(b, string(v))
	case string:
		return appendJSONString(b, v), nil
	case []any:
		b = append(b, '[')
		for i, item := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendCanonical(b, item); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			if b, err = appendCanonical(b, v[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	default:
		return nil, fmt.Errorf("chain: unexpected JSON value of type %T", v)
	}
}

const hexDigits = "0123456789abcdef"

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// maxPlainExponent bounds how many zeros an integer is written out with;
// beyond it the exponent form keeps the canonical form small.
const maxPlainExponent = 21

// appendNumber writes the decimal value of the JSON number n as an
// optional '-', the significant digits (no leading or trailing zeros) and
// then either that many zeros (a whole number of at most 21 digits) or
// 'e' and the exponent: value = digits × 10^exponent. Zero is "0".
func appendNumber(b []byte, n string) ([]byte, error) {
	negative := strings.HasPrefix(n, "-")
	n = strings.TrimPrefix(n, "-")
	mantissa, expText, hasExp := strings.Cut(strings.ToLower(n), "e")
	exponent := int64(0)
	if hasExp {
		e, err := strconv.ParseInt(strings.TrimPrefix(expText, "+"), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("chain: number %q is out of range", n)
		}
		exponent = e
	}
	whole, frac, _ := strings.Cut(mantissa, ".")
	digits := strings.TrimLeft(whole+frac, "0")
	exponent -= int64(len(frac))
	trimmed := strings.TrimRight(digits, "0")
	exponent += int64(len(digits) - len(trimmed))
	digits = trimmed
	if digits == "" {
		return append(b, '0'), nil
	}
	if negative {
		b = append(b, '-')
	}
	b = append(b, digits...)
	switch {
	case exponent == 0:
	case exponent > 0 && int64(len(digits))+exponent <= maxPlainExponent:
		for range exponent {
			b = append(b, '0')
		}
	default:
		b = append(b, 'e')
		b = strconv.AppendInt(b, exponent, 10)
	}
	return b, nil
}
