package bus

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"
)

// Transport names.
const (
	TransportGoChannel = "gochannel"
	TransportNATS      = "nats"
	TransportPostgres  = "postgres"
)

// Config chooses and tunes the transport.
type Config struct {
	// Transport is "gochannel" (in-process, the default), "nats" (NATS
	// JetStream) or "postgres" (PostgreSQL tables through watermill-sql).
	Transport string

	// NATSURL is the NATS server. Defaults to nats://127.0.0.1:4222.
	NATSURL string
	// NATSStream is the JetStream stream holding every careflow subject.
	// Defaults to "CAREFLOW".
	NATSStream string
	// NATSSubjectPrefix, when set, is put before every topic ("p" turns
	// careflow.session into p.careflow.session), so that several
	// deployments or tests can share one server.
	NATSSubjectPrefix string
	// NATSMaxAge is how long the stream keeps messages. Event data is PHI:
	// the broker is a buffer, the event store is the record. Defaults to
	// 7 days.
	NATSMaxAge time.Duration
	// NATSAckWait is how long a delivered message may stay unacknowledged
	// before JetStream redelivers it. Defaults to 30s.
	NATSAckWait time.Duration

	// PostgresURL is the PostgreSQL database for the "postgres" transport,
	// e.g. postgres://user@host:5432/db?sslmode=disable.
	PostgresURL string
	// PostgresPollInterval is how often an idle subscriber polls its
	// table. Defaults to 250ms.
	PostgresPollInterval time.Duration
	// PostgresAckDeadline is how long a subscriber waits for an ack before
	// redelivering. Defaults to 30s.
	PostgresAckDeadline time.Duration
}

const (
	defaultNATSURL              = "nats://127.0.0.1:4222"
	defaultNATSStream           = "CAREFLOW"
	defaultNATSMaxAge           = 7 * 24 * time.Hour
	defaultNATSAckWait          = 30 * time.Second
	defaultPostgresPollInterval = 250 * time.Millisecond
	defaultPostgresAckDeadline  = 30 * time.Second
)

var (
	natsStreamPattern   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	natsTokenPattern    = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
	consumerNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
)

func (c *Config) setDefaults() {
	if c.Transport == "" {
		c.Transport = TransportGoChannel
	}
	if c.NATSURL == "" {
		c.NATSURL = defaultNATSURL
	}
	if c.NATSStream == "" {
		c.NATSStream = defaultNATSStream
	}
	if c.NATSMaxAge == 0 {
		c.NATSMaxAge = defaultNATSMaxAge
	}
	if c.NATSAckWait == 0 {
		c.NATSAckWait = defaultNATSAckWait
	}
	if c.PostgresPollInterval == 0 {
		c.PostgresPollInterval = defaultPostgresPollInterval
	}
	if c.PostgresAckDeadline == 0 {
		c.PostgresAckDeadline = defaultPostgresAckDeadline
	}
}

// Validate reports everything wrong with the configuration (after
// defaults), at once.
func (c Config) Validate() error {
	var errs []error
	switch c.Transport {
	case TransportGoChannel:
	case TransportNATS:
		if u, err := url.Parse(c.NATSURL); err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
			errs = append(errs, fmt.Errorf("bus: NATSURL %q must be nats://host:port or tls://host:port", redactURL(c.NATSURL)))
		}
		if !natsStreamPattern.MatchString(c.NATSStream) {
			errs = append(errs, fmt.Errorf("bus: NATSStream %q must match %s", c.NATSStream, natsStreamPattern))
		}
		if c.NATSSubjectPrefix != "" && !natsTokenPattern.MatchString(c.NATSSubjectPrefix) {
			errs = append(errs, fmt.Errorf("bus: NATSSubjectPrefix %q must be dot-separated tokens of %s", c.NATSSubjectPrefix, natsTokenPattern))
		}
		if c.NATSMaxAge < 0 {
			errs = append(errs, fmt.Errorf("bus: NATSMaxAge %s must not be negative", c.NATSMaxAge))
		}
		if c.NATSAckWait <= 0 {
			errs = append(errs, fmt.Errorf("bus: NATSAckWait %s must be positive", c.NATSAckWait))
		}
	case TransportPostgres:
		if u, err := url.Parse(c.PostgresURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
			errs = append(errs, errors.New("bus: PostgresURL must be postgres://user@host:port/db"))
		}
		if c.PostgresPollInterval <= 0 {
			errs = append(errs, fmt.Errorf("bus: PostgresPollInterval %s must be positive", c.PostgresPollInterval))
		}
		if c.PostgresAckDeadline <= 0 {
			errs = append(errs, fmt.Errorf("bus: PostgresAckDeadline %s must be positive", c.PostgresAckDeadline))
		}
	default:
		errs = append(errs, fmt.Errorf("bus: Transport %q must be %q, %q or %q", c.Transport, TransportGoChannel, TransportNATS, TransportPostgres))
	}
	return errors.Join(errs...)
}

// redactURL hides a password a URL may carry, for error messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
