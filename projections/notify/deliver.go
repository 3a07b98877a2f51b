package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
	"strconv"
	"strings"
	"time"
)

// Deliverer hands a notification to its recipient outside careflow. It
// must tolerate a rare repeat: a crash after delivering but before the
// delivery was recorded delivers again.
type Deliverer interface {
	Deliver(ctx context.Context, n Notification) error
}

// LogDeliverer writes each notification's PHI-free summary to a logger:
// the deliverer for development and for deployments without mail.
type LogDeliverer struct {
	Logger *slog.Logger
}

// Deliver implements Deliverer.
func (d LogDeliverer) Deliver(ctx context.Context, n Notification) error {
	logger := d.Logger
	if logger == nil {
		logger = slog.Default()
	}
	level := slog.LevelInfo
	if n.Urgent {
		level = slog.LevelWarn
	}
	logger.Log(ctx, level, "notification", "id", n.ID, "recipient", n.RecipientID, "kind", string(n.Kind),
		"urgent", n.Urgent, "summary", n.Summary())
	return nil
}

// AddressBook finds where a user's mail goes.
type AddressBook interface {
	// MailAddress returns userID's address; ErrNoAddress when the user has
	// none, so delivery is skipped instead of retried.
	MailAddress(ctx context.Context, userID string) (string, error)
}

// ErrNoAddress: the recipient has no mail address.
var ErrNoAddress = errors.New("notify: recipient has no mail address")

// StaticAddressBook maps user ids to addresses, e.g. from configuration.
type StaticAddressBook map[string]string

// MailAddress implements AddressBook.
func (b StaticAddressBook) MailAddress(_ context.Context, userID string) (string, error) {
	if a, ok := b[userID]; ok && a != "" {
		return a, nil
	}
	return "", ErrNoAddress
}

// SMTPConfig says how to reach the mail server.
type SMTPConfig struct {
	Host string
	Port int
	// From is the envelope and header sender, e.g. careflow@clinic.example.
	From string
	// Username and Password, when set, authenticate with PLAIN (net/smtp
	// refuses that without TLS except towards localhost).
	Username string
	Password string
	// Timeout bounds one delivery, dial to QUIT. Defaults to 30s.
	Timeout time.Duration
	// LinkBase, when set, is put before "/notifications/<id>" in the mail
	// so the recipient can open it after signing in.
	LinkBase string
}

// SMTPDeliverer mails a notice that a notification waits. The mail holds
// the kind, whether it is urgent, and the notification id — no client,
// session or assignment ids and nothing clinical: mail leaves careflow.
type SMTPDeliverer struct {
	cfg       SMTPConfig
	addresses AddressBook
}

// NewSMTPDeliverer checks cfg.
func NewSMTPDeliverer(cfg SMTPConfig, addresses AddressBook) (*SMTPDeliverer, error) {
	var errs []error
	if cfg.Host == "" {
		errs = append(errs, errors.New("notify: SMTP host is empty"))
	}
	if cfg.Port <= 0 || cfg.Port > 65535 {
		errs = append(errs, fmt.Errorf("notify: SMTP port %d is out of range", cfg.Port))
	}
	if !validAddress(cfg.From) {
		errs = append(errs, fmt.Errorf("notify: SMTP from %q is not an address", cfg.From))
	}
	if addresses == nil {
		errs = append(errs, errors.New("notify: SMTP deliverer needs an address book"))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("notify: SMTP timeout %s is negative", cfg.Timeout))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &SMTPDeliverer{cfg: cfg, addresses: addresses}, nil
}

// Deliver implements Deliverer. A recipient without an address is skipped
// (nil): there is nothing to retry.
func (d *SMTPDeliverer) Deliver(ctx context.Context, n Notification) error {
	to, err := d.addresses.MailAddress(ctx, n.RecipientID)
	if errors.Is(err, ErrNoAddress) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("notify: address of %s: %w", n.RecipientID, err)
	}
	if !validAddress(to) {
		return fmt.Errorf("notify: address of %s is not usable", n.RecipientID)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	addr := net.JoinHostPort(d.cfg.Host, strconv.Itoa(d.cfg.Port))
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("notify: dial SMTP %s: %w", addr, err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	client, err := smtp.NewClient(conn, d.cfg.Host)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("notify: SMTP greeting from %s: %w", addr, err)
	}
	defer func() { _ = client.Close() }()
	if err := d.send(client, to, n); err != nil {
		return fmt.Errorf("notify: SMTP to %s for %s: %w", addr, n.ID, err)
	}
	return nil
}

func (d *SMTPDeliverer) send(c *smtp.Client, to string, n Notification) error {
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: d.cfg.Host, MinVersion: tls.VersionTLS12}); err != nil {
			return err
		}
	}
	if d.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", d.cfg.Username, d.cfg.Password, d.cfg.Host)); err != nil {
			return err
		}
	}
	if err := c.Mail(d.cfg.From); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(d.message(to, n)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// message is the mail: headers and a short plain-text body without PHI.
func (d *SMTPDeliverer) message(to string, n Notification) []byte {
	subject := "careflow: you have a new notification"
	what := "There is a new notification for you in careflow."
	if n.Urgent {
		subject = "careflow: URGENT notification"
		what = "There is an URGENT notification for you in careflow. Please sign in and read it now."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\n", d.cfg.From)
	fmt.Fprintf(&b, "To: %s\r\n", to)
	fmt.Fprintf(&b, "Subject: %s\r\n", subject)
	fmt.Fprintf(&b, "Date: %s\r\n", n.CreatedAt.UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@careflow>\r\n", n.ID)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	fmt.Fprintf(&b, "%s\r\n\r\nKind: %s\r\nNotification: %s\r\n", what, n.Kind, n.ID)
	if d.cfg.LinkBase != "" {
		fmt.Fprintf(&b, "Open: %s/notifications/%s\r\n", strings.TrimRight(d.cfg.LinkBase, "/"), n.ID)
	}
	b.WriteString("\r\nThis mail holds no clinical information by design.\r\n")
	return []byte(b.String())
}

// validAddress accepts a plain addr-spec without anything that could
// inject headers or SMTP commands.
func validAddress(a string) bool {
	local, domainPart, ok := strings.Cut(a, "@")
	return ok && local != "" && domainPart != "" && len(a) <= 254 && !strings.ContainsAny(a, " \t\r\n<>,;:\"()[]\\")
}

// Pump hands undelivered notifications to a Deliverer and records what it
// delivered. A failed delivery stays undelivered for the next pass.
type Pump struct {
	store     *Store
	deliverer Deliverer
	clock     func() time.Time
	logger    *slog.Logger
}

// NewPump returns a pump; clock stamps deliveries (nil: time.Now).
func NewPump(store *Store, deliverer Deliverer, clock func() time.Time, logger *slog.Logger) (*Pump, error) {
	if store == nil || deliverer == nil {
		return nil, errors.New("notify: pump needs a store and a deliverer")
	}
	if clock == nil {
		clock = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Pump{store: store, deliverer: deliverer, clock: clock, logger: logger}, nil
}

// pumpBatch is how many notifications one pass reads at a time.
const pumpBatch = 100

// DeliverPending delivers every undelivered notification (urgent first)
// and returns how many it delivered. Failures are logged and counted on the
// notification; they end the pass so a down mail server is not hammered,
// and are returned joined.
func (p *Pump) DeliverPending(ctx context.Context) (int, error) {
	delivered := 0
	for {
		batch, err := p.store.Undelivered(ctx, pumpBatch)
		if err != nil {
			return delivered, err
		}
		if len(batch) == 0 {
			return delivered, nil
		}
		for _, n := range batch {
			if err := p.deliverer.Deliver(ctx, n); err != nil {
				p.logger.Warn("notification delivery failed", "id", n.ID, "kind", string(n.Kind), "error", err)
				return delivered, errors.Join(err, p.store.noteFailure(ctx, n.ID))
			}
			if err := p.store.MarkDelivered(ctx, n.ID, p.clock()); err != nil {
				return delivered, err
			}
			delivered++
		}
	}
}
