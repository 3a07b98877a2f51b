package reactions

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections/bus"
	"github.com/careflow/careflow/projections/notify"
)

// ConsumerWebhooks is the bus consumer (and inbox) name of the webhook
// fan-out.
const ConsumerWebhooks = "webhooks"

// Headers of a delivery.
const (
	HeaderTimestamp = "Careflow-Timestamp"
	HeaderSignature = "Careflow-Signature"
	HeaderEventID   = "Careflow-Event-Id"
	HeaderAttempt   = "Careflow-Attempt"
	// SignatureVersion prefixes the hex signature: "v1=<hex>".
	SignatureVersion = "v1"
)

// WebhookBody is what a delivery carries: which event happened, never its
// data (no PHI). A receiver that needs more asks the API with its own
// credentials.
type WebhookBody struct {
	ID      string    `json:"id"`
	Type    string    `json:"type"`
	Stream  string    `json:"stream"`
	Version int64     `json:"version"`
	Clinic  string    `json:"clinic"`
	Time    time.Time `json:"time"`
}

// Sign returns the Careflow-Signature value of body sent at timestamp
// (Unix seconds): "v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
func Sign(secret string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte("."))
	mac.Write(body)
	return SignatureVersion + "=" + hex.EncodeToString(mac.Sum(nil))
}

// ErrBadSignature: a delivery's signature or timestamp does not verify.
var ErrBadSignature = errors.New("reactions: webhook signature does not verify")

// VerifySignature checks the headers of a delivery the way a receiver
// should: the signature matches (in constant time) and the timestamp is
// within tolerance of now, so a captured delivery cannot be replayed later.
func VerifySignature(secret, timestampHeader, signatureHeader string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestampHeader, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad timestamp", ErrBadSignature)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp outside the tolerance", ErrBadSignature)
	}
	want := Sign(secret, ts, body)
	for _, candidate := range strings.Split(signatureHeader, ",") {
		if hmac.Equal([]byte(strings.TrimSpace(candidate)), []byte(want)) {
			return nil
		}
	}
	return ErrBadSignature
}

// deliveryNamespace seeds delivery ids.
var deliveryNamespace = uuid.MustParse("d4b7e2a1-6c3f-4e59-8a0d-1f2e3c4b5a69")

// WebhookHandler is the bus handler for every topic of Topics: it queues a
// delivery of the event for each active endpoint of the event's clinic
// whose filters match, in the inbox's transaction.
func (w *Webhooks) Handler(inbox *bus.Inbox) message.NoPublishHandlerFunc {
	handle := inbox.HandleTx(ConsumerWebhooks, func(ctx context.Context, tx *sql.Tx, msg *message.Message) error {
		e, err := bus.Decode(msg)
		if err != nil {
			return err
		}
		_, err = w.Apply(ctx, tx, e)
		return err
	})
	return func(msg *message.Message) error {
		if err := handle(msg); err != nil {
			return err
		}
		w.Nudge()
		return nil
	}
}

// Apply queues deliveries of e through q and returns how many it queued.
func (w *Webhooks) Apply(ctx context.Context, q Querier, e eventstore.RecordedEvent) (int, error) {
	if err := w.markSeen(ctx, q, e.Stream.String(), e.Version); err != nil {
		return 0, err
	}
	clinic := e.Metadata.ClinicID
	if clinic == "" {
		return 0, nil
	}
	eps, err := w.endpoints(ctx, q, `clinic_id = ? AND state = 'active'`, clinic)
	if err != nil {
		return 0, err
	}
	queued := 0
	now := w.cfg.Clock().UnixNano()
	for _, ep := range eps {
		if !matches(ep.Types, e.Type) {
			continue
		}
		id := uuid.NewSHA1(deliveryNamespace, []byte(ep.ID+"\x00"+e.ID.String())).String()
		res, err := q.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, stream, version,
			position, clinic_id, recorded_at, state, next_attempt_at, queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)
			ON CONFLICT (endpoint_id, event_id) DO NOTHING`,
			id, ep.ID, e.ID.String(), e.Type, e.Stream.String(), e.Version, e.Position, clinic, e.RecordedAt.UnixNano(), now, now)
		if err != nil {
			return queued, fmt.Errorf("reactions: queue delivery of %s to %s: %w", e.ID, ep.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			queued++
		}
	}
	return queued, nil
}

// markSeen records that the consumer saw version of stream and moves the
// stream's mark over every version now seen without a gap.
func (w *Webhooks) markSeen(ctx context.Context, q Querier, stream string, version int64) error {
	through, err := streamMark(ctx, q, stream)
	if err != nil {
		return err
	}
	if version <= through {
		return nil
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO webhook_stream_seen (stream, version) VALUES (?, ?) ON CONFLICT DO NOTHING`, stream, version); err != nil {
		return fmt.Errorf("reactions: mark %s version %d seen: %w", stream, version, err)
	}
	return advanceMark(ctx, q, stream, through)
}

// advanceMark moves stream's mark from through over the contiguous seen
// versions after it, forgetting them, and saves it.
func advanceMark(ctx context.Context, q Querier, stream string, through int64) error {
	for {
		res, err := q.ExecContext(ctx, `DELETE FROM webhook_stream_seen WHERE stream = ? AND version <= ?`, stream, through+1)
		if err != nil {
			return fmt.Errorf("reactions: advance mark of %s: %w", stream, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			break
		}
		through++
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO webhook_stream_marks (stream, through) VALUES (?, ?)
		ON CONFLICT (stream) DO UPDATE SET through = CASE WHEN webhook_stream_marks.through > excluded.through
			THEN webhook_stream_marks.through ELSE excluded.through END`, stream, through); err != nil {
		return fmt.Errorf("reactions: save mark of %s: %w", stream, err)
	}
	return nil
}

func streamMark(ctx context.Context, q Querier, stream string) (int64, error) {
	var through int64
	err := q.QueryRowContext(ctx, `SELECT through FROM webhook_stream_marks WHERE stream = ?`, stream).Scan(&through)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reactions: mark of %s: %w", stream, err)
	}
	return through, nil
}

// Nudge makes Run deliver now (after deliveries were queued).
func (w *Webhooks) Nudge() {
	select {
	case w.nudge <- struct{}{}:
	default:
	}
}

// delivery is a queued delivery with its endpoint.
type delivery struct {
	id, endpointID, eventID, eventType, stream, clinicID string
	version, position                                    int64
	recordedAt                                           time.Time
	attempts                                             int
	firstAttemptAt                                       time.Time
}

// DeliverDue attempts every delivery due by the clock whose earlier
// versions of the same stream reached the same endpoint, until none is
// left, and returns how many succeeded. Endpoints are served in parallel,
// one attempt at a time each. A delivery is only attempted after every
// earlier version of its stream was delivered to that endpoint, so order
// per stream is kept across failures and restarts.
func (w *Webhooks) DeliverDue(ctx context.Context) (int, error) {
	w.dispatching.Lock()
	defer w.dispatching.Unlock()
	delivered := 0
	for {
		heads, err := w.dueHeads(ctx)
		if err != nil {
			return delivered, err
		}
		if len(heads) == 0 {
			return delivered, nil
		}
		byEndpoint := map[string][]delivery{}
		var order []string
		for _, d := range heads {
			if _, ok := byEndpoint[d.endpointID]; !ok {
				order = append(order, d.endpointID)
			}
			byEndpoint[d.endpointID] = append(byEndpoint[d.endpointID], d)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		for _, endpointID := range order {
			wg.Add(1)
			go func(ds []delivery) {
				defer wg.Done()
				for _, d := range ds {
					ok, err := w.attempt(ctx, d)
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					}
					if ok {
						delivered++
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}(byEndpoint[endpointID])
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return delivered, err
		}
	}
}

// dueBatch bounds one selection of due deliveries.
const dueBatch = 200

func (w *Webhooks) dueHeads(ctx context.Context) ([]delivery, error) {
	now := w.cfg.Clock()
	rows, err := w.cfg.DB.QueryContext(ctx, `SELECT d.id, d.endpoint_id, d.event_id, d.event_type, d.stream, d.clinic_id,
			d.version, d.position, d.recorded_at, d.attempts, d.first_attempt_at
		FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
		WHERE d.state = 'pending' AND e.state = 'active' AND d.next_attempt_at <= ?
		  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
			WHERE p.endpoint_id = d.endpoint_id AND p.stream = d.stream AND p.state = 'pending' AND p.version < d.version)
		  AND (d.version <= coalesce((SELECT m.through FROM webhook_stream_marks m WHERE m.stream = d.stream), 0) + 1
			OR d.queued_at <= ?)
		ORDER BY d.position, d.endpoint_id LIMIT ?`, now.UnixNano(), now.Add(-w.cfg.OrderGrace).UnixNano(), dueBatch)
	if err != nil {
		return nil, fmt.Errorf("reactions: due deliveries: %w", err)
	}
	defer rows.Close()
	var out []delivery
	for rows.Next() {
		var d delivery
		var recorded, first int64
		if err := rows.Scan(&d.id, &d.endpointID, &d.eventID, &d.eventType, &d.stream, &d.clinicID, &d.version, &d.position,
			&recorded, &d.attempts, &first); err != nil {
			return nil, fmt.Errorf("reactions: due deliveries: %w", err)
		}
		d.recordedAt = time.Unix(0, recorded).UTC()
		if first != 0 {
			d.firstAttemptAt = time.Unix(0, first).UTC()
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reactions: due deliveries: %w", err)
	}
	rows.Close()
	for _, d := range out {
		if err := w.waitedOut(ctx, d); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// waitedOut gives up on the versions of d's stream before d that the
// consumer never saw within OrderGrace (from before its time, or lost),
// so later versions of the stream need not wait for them again.
func (w *Webhooks) waitedOut(ctx context.Context, d delivery) error {
	through, err := streamMark(ctx, w.cfg.DB, d.stream)
	if err != nil {
		return err
	}
	if d.version <= through+1 {
		return nil
	}
	w.cfg.Logger.Warn("webhook delivery waited out a gap in its stream", "stream", d.stream, "version", d.version, "seen_through", through)
	return advanceMark(ctx, w.cfg.DB, d.stream, d.version-1)
}

// attempt sends d once and records the attempt. It reports whether the
// receiver accepted it; an error is about careflow's own database.
func (w *Webhooks) attempt(ctx context.Context, d delivery) (bool, error) {
	eps, err := w.endpointRows(ctx, w.cfg.DB, `id = ?`, d.endpointID)
	if err != nil {
		return false, err
	}
	if len(eps) == 0 || eps[0].State != EndpointActive {
		return false, nil
	}
	ep := eps[0]
	body, err := json.Marshal(WebhookBody{ID: d.eventID, Type: d.eventType, Stream: d.stream, Version: d.version, Clinic: d.clinicID, Time: d.recordedAt})
	if err != nil {
		return false, fmt.Errorf("reactions: encode delivery %s: %w", d.id, err)
	}
	now := w.cfg.Clock()
	number := d.attempts + 1
	status, failure := w.send(ctx, ep, d, body, now, number)
	if ctx.Err() != nil {
		// Shutting down is not the receiver's fault: record nothing.
		return false, ctx.Err()
	}
	first := d.firstAttemptAt
	if first.IsZero() {
		first = now
	}

	tx, err := w.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("reactions: record attempt of %s: %w", d.id, err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_attempts (delivery_id, number, endpoint_id, at, status_code, error, succeeded)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id, number) DO NOTHING`,
		d.id, number, d.endpointID, now.UnixNano(), status, failure, boolInt(failure == "")); err != nil {
		return false, fmt.Errorf("reactions: record attempt of %s: %w", d.id, err)
	}
	disabled := false
	if failure == "" {
		_, err = tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = 'delivered', attempts = ?, first_attempt_at = ?, delivered_at = ?
			WHERE id = ?`, number, first.UnixNano(), now.UnixNano(), d.id)
	} else {
		deadline := first.Add(w.cfg.RetryWindow)
		if !now.Before(deadline) {
			disabled, err = w.disable(ctx, tx, ep, now)
			if err != nil {
				return false, err
			}
		}
		// The last retry happens at the end of the window.
		next := now.Add(w.backoff(number))
		if next.After(deadline) && deadline.After(now) {
			next = deadline
		}
		_, err = tx.ExecContext(ctx, `UPDATE webhook_deliveries SET attempts = ?, first_attempt_at = ?, next_attempt_at = ? WHERE id = ?`,
			number, first.UnixNano(), next.UnixNano(), d.id)
	}
	if err != nil {
		return false, fmt.Errorf("reactions: record attempt of %s: %w", d.id, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("reactions: record attempt of %s: %w", d.id, err)
	}
	if failure != "" {
		w.cfg.Logger.Warn("webhook delivery failed", "endpoint", d.endpointID, "event", d.eventID, "attempt", number, "error", failure)
	}
	if disabled {
		w.cfg.Logger.Error("webhook endpoint disabled after its retry window", "endpoint", d.endpointID, "clinic", ep.ClinicID)
		if w.cfg.Notified != nil {
			w.cfg.Notified()
		}
	}
	return failure == "", nil
}

// send posts body to the endpoint; it returns the status code (0 without
// a response) and "" on success or why it failed.
func (w *Webhooks) send(ctx context.Context, ep endpointRow, d delivery, body []byte, now time.Time, number int) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return 0, "bad request: " + err.Error()
	}
	ts := now.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "careflow-webhooks/1")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(ep.secret, ts, body))
	req.Header.Set(HeaderEventID, d.eventID)
	req.Header.Set(HeaderAttempt, strconv.Itoa(number))
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return 0, truncate(err.Error(), 512)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, "HTTP " + strconv.Itoa(resp.StatusCode)
	}
	return resp.StatusCode, ""
}

// disable turns an active endpoint off and notifies the admin who
// registered it, in tx. It reports whether this call disabled it.
func (w *Webhooks) disable(ctx context.Context, tx *sql.Tx, ep endpointRow, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE webhook_endpoints SET state = 'disabled', disabled_at = ? WHERE id = ? AND state = 'active'`,
		now.UnixNano(), ep.ID)
	if err != nil {
		return false, fmt.Errorf("reactions: disable webhook %s: %w", ep.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	_, err = w.cfg.Notifications.Add(ctx, tx, notify.Notification{
		ID:          notify.DeriveID(notify.KindWebhookDisabled, ep.RegisteredBy, ep.ID+"@"+strconv.FormatInt(now.UnixNano(), 10)),
		RecipientID: ep.RegisteredBy, Kind: notify.KindWebhookDisabled, Urgent: false,
		ClinicID: ep.ClinicID, WebhookID: ep.ID, CreatedAt: now,
	})
	if err != nil {
		return false, err
	}
	return true, nil
}

// backoff is the wait after the n-th failed attempt: RetryInitial doubled
// per earlier failure up to RetryMax, plus up to half of it as jitter so
// that many failing deliveries do not retry in lockstep.
func (w *Webhooks) backoff(n int) time.Duration {
	d := w.cfg.RetryInitial
	for i := 1; i < n && d < w.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, w.cfg.RetryMax)
	return d + w.cfg.Jitter(d/2)
}

// Next is when the earliest delivery that may go next (the first pending
// version of its stream, to an active endpoint, with every earlier version
// seen or waited out) is due.
func (w *Webhooks) Next(ctx context.Context) (time.Time, bool, error) {
	var at sql.NullInt64
	err := w.cfg.DB.QueryRowContext(ctx, `SELECT min(CASE
			WHEN d.version <= coalesce((SELECT m.through FROM webhook_stream_marks m WHERE m.stream = d.stream), 0) + 1 THEN d.next_attempt_at
			WHEN d.next_attempt_at > d.queued_at + ? THEN d.next_attempt_at ELSE d.queued_at + ? END)
		FROM webhook_deliveries d
		JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.state = 'pending' AND e.state = 'active'
		  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
			WHERE p.endpoint_id = d.endpoint_id AND p.stream = d.stream AND p.state = 'pending' AND p.version < d.version)`,
		w.cfg.OrderGrace.Nanoseconds(), w.cfg.OrderGrace.Nanoseconds()).Scan(&at)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("reactions: next delivery: %w", err)
	}
	if !at.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, at.Int64).UTC(), true, nil
}

// Run delivers until ctx ends: when deliveries are due by the clock, when
// nudged, and at least every MaxWait. It returns ctx.Err().
func (w *Webhooks) Run(ctx context.Context) error {
	for {
		_, err := w.DeliverDue(ctx)
		if err != nil && ctx.Err() == nil {
			w.cfg.Logger.Warn("webhook delivery pass failed", "error", err)
		}
		wait := w.cfg.MaxWait
		if next, ok, nerr := w.Next(ctx); nerr == nil && ok {
			wait = min(max(next.Sub(w.cfg.Clock()), 0), w.cfg.MaxWait)
		}
		if err != nil {
			wait = max(wait, time.Second)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-w.nudge:
			timer.Stop()
		case <-timer.C:
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut]
}
