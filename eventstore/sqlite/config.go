package sqlite

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config says where the database lives and how the store uses it.
type Config struct {
	// Path is the database file. Its parent directories are created.
	Path string
	// MaxBatch is how many waiting appends the writer commits in one
	// transaction (one fsync). Defaults to 256.
	MaxBatch int
	// QueueSize is how many appends may wait for the writer before Append
	// blocks. Defaults to 4 * MaxBatch.
	QueueSize int
	// BusyTimeout is how long a connection waits for a lock held by another
	// connection (a backup tool, another process) before failing. Defaults
	// to 5s.
	BusyTimeout time.Duration
	// ReadConns is the size of the read pool (reads never wait for the
	// writer in WAL mode). Defaults to 4.
	ReadConns int
}

const (
	defaultMaxBatch    = 256
	defaultBusyTimeout = 5 * time.Second
	defaultReadConns   = 4
)

func (c *Config) setDefaults() {
	if c.MaxBatch == 0 {
		c.MaxBatch = defaultMaxBatch
	}
	if c.QueueSize == 0 {
		c.QueueSize = 4 * c.MaxBatch
	}
	if c.BusyTimeout == 0 {
		c.BusyTimeout = defaultBusyTimeout
	}
	if c.ReadConns == 0 {
		c.ReadConns = defaultReadConns
	}
}

// Validate reports what is wrong with the configuration (after defaults).
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.Path == "":
		errs = append(errs, errors.New("sqlite: Path is empty"))
	case c.Path == ":memory:" || strings.HasPrefix(c.Path, "file:"):
		// The writer and the read pool are separate connections: they must
		// share a file, and a URI would bypass the pragmas set below.
		errs = append(errs, fmt.Errorf("sqlite: Path %q must be a plain file path", c.Path))
	case strings.ContainsAny(c.Path, "?#"):
		errs = append(errs, fmt.Errorf("sqlite: Path %q must not contain '?' or '#'", c.Path))
	}
	if c.MaxBatch < 1 {
		errs = append(errs, fmt.Errorf("sqlite: MaxBatch %d must be at least 1", c.MaxBatch))
	}
	if c.QueueSize < 0 {
		errs = append(errs, fmt.Errorf("sqlite: QueueSize %d must not be negative", c.QueueSize))
	}
	if c.BusyTimeout < 0 {
		errs = append(errs, fmt.Errorf("sqlite: BusyTimeout %s must not be negative", c.BusyTimeout))
	}
	if c.ReadConns < 1 {
		errs = append(errs, fmt.Errorf("sqlite: ReadConns %d must be at least 1", c.ReadConns))
	}
	return errors.Join(errs...)
}

// dsn is the driver's connection string. Every connection gets WAL and
// synchronous=FULL: in WAL mode FULL syncs the log at every commit, so an
// acknowledged append survives power loss, not only a process crash.
func (c Config) dsn(readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(c.BusyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	if readOnly {
		q.Add("_pragma", "query_only(ON)")
	} else {
		// The writer takes the write lock when its transaction begins, so a
		// foreign writer makes it wait at BEGIN (busy_timeout) instead of
		// failing at the first INSERT.
		q.Set("_txlock", "immediate")
	}
	return c.Path + "?" + q.Encode()
}
