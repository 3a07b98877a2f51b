package postgres

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Config says which PostgreSQL database holds the events and how the store
// uses it.
type Config struct {
	// URL is a libpq connection string or postgres:// URL.
	URL string
	// MaxConns bounds the connection pool appends and reads share (the
	// store's one listening connection comes on top). Defaults to 16.
	MaxConns int32
	// Migrate creates or upgrades the schema on Open. Without it, Open
	// refuses a database whose schema is not the one this build expects.
	Migrate bool
	// AllowAsyncCommit lets the store run on a server whose
	// synchronous_commit is off. With it off (the default) Open refuses:
	// such a server acknowledges commits it may lose in a crash, and an
	// acknowledged append must survive one.
	AllowAsyncCommit bool
	// RecheckInterval is how soon a subscriber looks again when it knows
	// committed events exist that it may not read yet (an older
	// transaction is still open). Defaults to 75ms.
	RecheckInterval time.Duration
	// AppendWorkers is how many append statements this store runs at once.
	// Appends arriving while all workers are busy are written together, up
	// to MaxGroup in one statement (one transaction, one commit to wait
	// for). Defaults to 1: the NOTIFY in every append transaction makes
	// PostgreSQL commit them one at a time anyway, so one worker with big
	// groups beats several with small ones (docs/performance.md).
	AppendWorkers int
	// MaxGroup bounds how many appends one statement writes. Defaults to
	// 64; 1 writes every append on its own.
	MaxGroup int
	// GroupWait is how long, at most, a worker that just wrote a group of
	// several appends waits for more before it writes the next one: the
	// appenders it answered are typically back within microseconds, and
	// waiting for them costs far less than a commit. It stops waiting once
	// as many appends are waiting as the last group held. After a lone
	// append it does not wait. Defaults to 1ms; negative disables it.
	GroupWait time.Duration
	// NotifyAfterCommit sends the commit notification from a separate,
	// asynchronously committed transaction right after each commit (one
	// for all commits in between), instead of inside the append
	// transaction. NOTIFY's commit lock makes notifying transactions commit
	// one at a time, WAL flush included; without it in the append
	// transaction, appends (with AppendWorkers > 1) and other processes
	// commit in parallel. The cost: if the process dies between a commit
	// and its notification, subscribers elsewhere learn of those events at
	// the next notification or at their LostNotifyRecheck. Set it on every
	// process sharing the database, so every subscriber has that re-check.
	NotifyAfterCommit bool
	// LostNotifyRecheck is how often an idle subscriber looks for events
	// whose notification was lost, with NotifyAfterCommit. Defaults to 1s.
	LostNotifyRecheck time.Duration
	// IdleRecheck is how often an idle subscriber looks for new events
	// without a notification, in the default mode: it bounds how long a
	// notification lost for any reason (the listener reconnecting, a
	// server restart) can hold events back from a subscriber. Defaults to
	// 5s.
	IdleRecheck time.Duration
}

const (
	defaultMaxConns        = 16
	defaultRecheckInterval = 75 * time.Millisecond
	defaultAppendWorkers   = 1
	defaultMaxGroup        = 64
	defaultLostNotify      = time.Second
	defaultGroupWait       = time.Millisecond
	defaultIdleRecheck     = 5 * time.Second
)

func (c *Config) setDefaults() {
	if c.MaxConns == 0 {
		c.MaxConns = defaultMaxConns
	}
	if c.RecheckInterval == 0 {
		c.RecheckInterval = defaultRecheckInterval
	}
	if c.AppendWorkers == 0 {
		c.AppendWorkers = defaultAppendWorkers
	}
	if c.MaxGroup == 0 {
		c.MaxGroup = defaultMaxGroup
	}
	if c.GroupWait == 0 {
		c.GroupWait = defaultGroupWait
	}
	if c.LostNotifyRecheck == 0 {
		c.LostNotifyRecheck = defaultLostNotify
	}
	if c.IdleRecheck == 0 {
		c.IdleRecheck = defaultIdleRecheck
	}
}

// Validate reports what is wrong with the configuration (after defaults).
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("postgres: URL is empty"))
	} else if _, err := pgxpool.ParseConfig(c.URL); err != nil {
		// pgx redacts the password in its parse errors.
		errs = append(errs, fmt.Errorf("postgres: URL: %w", err))
	}
	if c.MaxConns < 1 {
		errs = append(errs, fmt.Errorf("postgres: MaxConns %d must be at least 1", c.MaxConns))
	}
	if c.RecheckInterval < 0 {
		errs = append(errs, fmt.Errorf("postgres: RecheckInterval %s must not be negative", c.RecheckInterval))
	}
	if c.IdleRecheck < 0 {
		errs = append(errs, fmt.Errorf("postgres: IdleRecheck %s must not be negative", c.IdleRecheck))
	}
	if c.LostNotifyRecheck < 0 {
		errs = append(errs, fmt.Errorf("postgres: LostNotifyRecheck %s must not be negative", c.LostNotifyRecheck))
	}
	if c.AppendWorkers < 1 {
		errs = append(errs, fmt.Errorf("postgres: AppendWorkers %d must be at least 1", c.AppendWorkers))
	}
	if c.MaxGroup < 1 {
		errs = append(errs, fmt.Errorf("postgres: MaxGroup %d must be at least 1", c.MaxGroup))
	}
	return errors.Join(errs...)
}
