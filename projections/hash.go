package projections

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"
)

// TableHash is a canonical hash of a physical table's rows: its column
// names and every row in primary-key order (all columns when it has no
// primary key), each value encoded with its type. Two tables with the same
// columns and the same rows hash alike whatever their names and insertion
// order. Tests use it to compare a read model built incrementally with the
// same one rebuilt from scratch.
func TableHash(ctx context.Context, db *DB, table string) (string, error) {
	if !physicalPattern.MatchString(table) {
		return "", fmt.Errorf("projections: table name %q must match %s", table, physicalPattern)
	}
	h := sha256.New()
	if err := hashTable(ctx, db.read, db.dialect, table, h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ProjectionHash hashes every table of the projection's active generation,
// in declaration order, in one read transaction.
func ProjectionHash(ctx context.Context, db *DB, projection string) (string, error) {
	h := sha256.New()
	err := db.Read(ctx, projection, func(tx *sql.Tx, t TableNames) error {
		for _, logical := range t.Logical() {
			writeField(h, 't', []byte(logical))
			if err := hashTable(ctx, tx, db.dialect, t.Of(logical), h); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashTable(ctx context.Context, q Queryer, d Dialect, table string, h hash.Hash) error {
	columns, key, err := d.Columns(ctx, q, table)
	if err != nil {
		return err
	}
	order := key
	if len(order) == 0 {
		order = columns
	}
	for _, c := range columns {
		writeField(h, 'c', []byte(c))
	}
	rows, err := q.QueryContext(ctx, `SELECT `+strings.Join(columns, ", ")+` FROM `+table+` ORDER BY `+strings.Join(order, ", "))
	if err != nil {
		return fmt.Errorf("projections: hash %s: %w", table, err)
	}
	defer rows.Close()
	values := make([]any, len(columns))
	targets := make([]any, len(columns))
	for i := range values {
		targets[i] = &values[i]
	}
	for rows.Next() {
		if err := rows.Scan(targets...); err != nil {
			return fmt.Errorf("projections: hash %s: %w", table, err)
		}
		writeField(h, 'r', nil)
		for _, v := range values {
			writeValue(h, v)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("projections: hash %s: %w", table, err)
	}
	return nil
}

// writeValue encodes one value with a type tag and a length, so that no
// two different rows can produce the same byte stream.
func writeValue(h hash.Hash, v any) {
	switch v := v.(type) {
	case nil:
		writeField(h, 'n', nil)
	case int64:
		writeField(h, 'i', strconv.AppendInt(nil, v, 10))
	case float64:
		writeField(h, 'f', strconv.AppendFloat(nil, v, 'g', -1, 64))
	case bool:
		writeField(h, 'b', strconv.AppendBool(nil, v))
	case string:
		writeField(h, 's', []byte(v))
	case []byte:
		writeField(h, 'x', v)
	case time.Time:
		writeField(h, 'd', []byte(v.UTC().Format(time.RFC3339Nano)))
	default:
		writeField(h, '?', fmt.Appendf(nil, "%T:%v", v, v))
	}
}

func writeField(h hash.Hash, tag byte, data []byte) {
	var header [9]byte
	header[0] = tag
	binary.BigEndian.PutUint64(header[1:], uint64(len(data)))
	h.Write(header[:])
	h.Write(data)
}
