package views

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/careflow/careflow/projections"
)

// PHIColumns are the sealed columns, as "<logical table>.<column>".
var PHIColumns = []string{
	string(colInboxClientName), string(colInboxSessionTitle), string(colInboxItemTotal), string(colInboxItemSeverity),
	string(colInboxItemFlags), string(colCSTitle), string(colCSDescription), string(colCSCancelReason),
	string(colCSTotal), string(colCSSeverity), string(colCSFeedbackText), string(colCSCommentText),
	string(colCSMessageText), string(colSVTitle), string(colSVDescription), string(colSVCloseReason),
	string(colSVCancelReason), string(colSVAnswers), string(colSVTotal), string(colSVSeverity), string(colSVFlags),
	string(colSVUrgent), string(colSVFeedbackText), string(colSVCommentText), string(colSVPostText),
	string(colScoreTotal), string(colScoreSeverity), string(colScoreFlags), string(colScoreUrgent),
}

// SealedPrefix starts every sealed value as stored.
const SealedPrefix = sealedPrefix

// Table is one table's rows as a reader sees them.
type Table struct {
	Columns []string
	Rows    [][]any
}

// OpenedTables reads every table of the projection's active generation, by
// logical name, rows in primary-key order, with every sealed value opened
// under its row's client (the row's client_id, or its session's) and every
// redacted one read as eventstore.Redacted. Sealing draws a random nonce
// per value, so the stored bytes of two builds never match; what they open
// to must.
func OpenedTables(ctx context.Context, db *projections.DB, projection string) (map[string]Table, error) {
	out := map[string]Table{}
	err := db.Read(ctx, projection, func(tx *sql.Tx, t projections.TableNames) error {
		var tables []Table
		for _, logical := range t.Logical() {
			table, err := rawTable(ctx, db, tx, t.Of(logical))
			if err != nil {
				return err
			}
			tables = append(tables, table)
		}
		// A session's client, for the tables keyed by session alone.
		clientOf := map[string]string{}
		for _, table := range tables {
			s, c := slices.Index(table.Columns, "session_id"), slices.Index(table.Columns, "client_id")
			if s >= 0 && c >= 0 {
				for _, row := range table.Rows {
					clientOf[row[s].(string)] = row[c].(string)
				}
			}
		}
		for i, logical := range t.Logical() {
			table := tables[i]
			s, c := slices.Index(table.Columns, "session_id"), slices.Index(table.Columns, "client_id")
			for _, row := range table.Rows {
				for j, v := range row {
					stored, ok := v.(string)
					if !ok || (!strings.HasPrefix(stored, sealedPrefix) && stored != redactedMark) {
						continue
					}
					var client string
					switch {
					case c >= 0:
						client = row[c].(string)
					case s >= 0:
						client = clientOf[row[s].(string)]
					}
					// The clinic overview seals nothing: this fails there.
					ci, err := readerCipher(db, projection)
					if err != nil {
						return err
					}
					// A value sealed under a key destroyed since and one
					// stored redacted both read eventstore.Redacted.
					if row[j], err = ci.open(client, column(logical+"."+table.Columns[j]), stored); err != nil {
						return err
					}
				}
			}
			out[logical] = table
		}
		return nil
	})
	return out, err
}

// RawTables reads every table of the projection's active generation as
// stored, by logical name.
func RawTables(ctx context.Context, db *projections.DB, projection string) (map[string]Table, error) {
	out := map[string]Table{}
	err := db.Read(ctx, projection, func(tx *sql.Tx, t projections.TableNames) error {
		for _, logical := range t.Logical() {
			table, err := rawTable(ctx, db, tx, t.Of(logical))
			if err != nil {
				return err
			}
			out[logical] = table
		}
		return nil
	})
	return out, err
}

func rawTable(ctx context.Context, db *projections.DB, tx *sql.Tx, physical string) (Table, error) {
	columns, key, err := db.Dialect().Columns(ctx, tx, physical)
	if err != nil {
		return Table{}, err
	}
	if len(key) == 0 {
		key = columns
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+strings.Join(columns, ", ")+` FROM `+physical+` ORDER BY `+strings.Join(key, ", "))
	if err != nil {
		return Table{}, fmt.Errorf("read %s: %w", physical, err)
	}
	defer rows.Close()
	out := Table{Columns: columns}
	for rows.Next() {
		values := make([]any, len(columns))
		targets := make([]any, len(columns))
		for i := range values {
			targets[i] = &values[i]
		}
		if err := rows.Scan(targets...); err != nil {
			return Table{}, err
		}
		for i, v := range values {
			if b, ok := v.([]byte); ok {
				values[i] = string(b)
			}
		}
		out.Rows = append(out.Rows, values)
	}
	return out, rows.Err()
}
