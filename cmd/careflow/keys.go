package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/careflow/careflow/eventstore/keyring"
)

// validateKeys checks the key settings without touching a file: whether a
// key file is readable is found out when the keyring opens.
func (c Config) validateKeys(bad func(key, format string, args ...any)) error {
	var err error
	if c.KEK != "" {
		if c.KEKFile != "" {
			bad("kek_file", "kek_file and kek (CAREFLOW_KEK) are both set; keep one")
		}
		if _, perr := keyring.ParseKEK(c.KEK); perr != nil {
			// No flag for kek, so not through bad, which names one.
			err = fmt.Errorf("kek (CAREFLOW_KEK): %w", perr)
		}
	}
	for _, p := range c.KEKPreviousFiles {
		if p == "" {
			bad("kek_previous_files", "names an empty file")
		}
	}
	if c.KeysURL != "" {
		if _, perr := parseStoreURL(c.KeysURL); perr != nil {
			bad("keys_url", "%v", perr)
		}
	}
	return err
}

// keysLocation is where the data keys live: keys_url, else a file beside a
// SQLite store, else the PostgreSQL store's database.
func (c Config) keysLocation() (storeLocation, error) {
	raw := c.KeysURL
	if raw == "" {
		loc, err := parseStoreURL(c.StoreURL)
		if err != nil {
			return storeLocation{}, err
		}
		if loc.Kind == "postgres" {
			return loc, nil
		}
		path, err := c.besideStore("-keys.db")
		if err != nil {
			return storeLocation{}, err
		}
		return storeLocation{Kind: "sqlite", Path: path}, nil
	}
	return parseStoreURL(raw)
}

// keysLocationText names a location for a log line or a message.
func keysLocationText(loc storeLocation) string {
	if loc.Kind == "sqlite" {
		return loc.Path
	}
	u, err := url.Parse(loc.URL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// openKeyring opens the per-client data keys with the configured KEKs. On
// the embedded SQLite default with no KEK configured it makes one beside
// the store on first start (and warns at every start: a KEK next to the
// data it protects only guards against a leaked copy of the keys database
// alone). With PostgreSQL anywhere it refuses to guess.
func openKeyring(ctx context.Context, cfg Config, log *slog.Logger) (*keyring.Keyring, io.Closer, error) {
	loc, err := cfg.keysLocation()
	if err != nil {
		return nil, nil, fmt.Errorf("keys_url: %w", err)
	}
	store, err := parseStoreURL(cfg.StoreURL)
	if err != nil {
		return nil, nil, err
	}
	var current keyring.KEK
	switch {
	case cfg.KEK != "":
		if current, err = keyring.ParseKEK(cfg.KEK); err != nil {
			return nil, nil, fmt.Errorf("kek (CAREFLOW_KEK): %w", err)
		}
	case cfg.KEKFile != "":
		if current, err = keyring.LoadKEKFile(cfg.KEKFile); err != nil {
			return nil, nil, err
		}
	case store.Kind == "sqlite" && loc.Kind == "sqlite":
		path, err := cfg.besideStore("-kek")
		if err != nil {
			return nil, nil, err
		}
		if current, err = localKEK(path); err != nil {
			return nil, nil, err
		}
		log.Warn("the key-encryption key is kept beside the data it protects; for real records create one with "+
			"`careflow keys generate`, keep it elsewhere and set kek_file or CAREFLOW_KEK", "kek_file", path, "kek_id", current.ID())
	default:
		return nil, nil, errors.New("no key-encryption key configured: with a PostgreSQL store or keys database set kek_file " +
			"or CAREFLOW_KEK (careflow keys generate makes one)")
	}
	var previous []keyring.KEK
	for _, p := range cfg.KEKPreviousFiles {
		k, err := keyring.LoadKEKFile(p)
		if err != nil {
			return nil, nil, fmt.Errorf("kek_previous_files: %w", err)
		}
		previous = append(previous, k)
	}
	k, err := keyring.Open(ctx, keyringLocation(loc), keyring.Config{Current: current, Previous: previous})
	if err != nil {
		return nil, nil, fmt.Errorf("open the data keys at %s: %w", keysLocationText(loc), err)
	}
	log.Info("data keys open", "keys", keysLocationText(loc), "kek_id", current.ID(), "previous_keks", len(previous))
	return k, k, nil
}

// keyringLocation is loc as keyring.Open takes it.
func keyringLocation(loc storeLocation) string {
	if loc.Kind == "sqlite" {
		return loc.Path
	}
	return loc.URL
}

// localKEK returns the KEK kept in path, making it on first use. The new
// key is written to a temporary file and linked into place, so a second
// process starting at the same time reads either no file or the whole key,
// never half of one.
func localKEK(path string) (keyring.KEK, error) {
	k, err := keyring.LoadKEKFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	k, text, err := keyring.GenerateKEK(rand.Reader)
	if err != nil {
		return keyring.KEK{}, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return keyring.KEK{}, fmt.Errorf("create the KEK file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".new-*") // mode 0600
	if err != nil {
		return keyring.KEK{}, fmt.Errorf("create the KEK file: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	_, werr := tmp.WriteString(text + "\n")
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return keyring.KEK{}, fmt.Errorf("write the KEK file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return keyring.LoadKEKFile(path)
	} else if err != nil {
		return keyring.KEK{}, fmt.Errorf("create the KEK file: %w", err)
	}
	// The directory entry must be durable too: a key lost in a crash takes
	// every data key wrapped under it along.
	if d, err := os.Open(dir); err == nil {
		serr := d.Sync()
		_ = d.Close()
		if serr != nil {
			return keyring.KEK{}, fmt.Errorf("sync %s: %w", dir, serr)
		}
	}
	return k, nil
}

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage the key-encryption key (KEK) that wraps the per-client data keys"}
	generate := &cobra.Command{
		Use:   "generate",
		Short: "Print a new random KEK (base64) to stdout",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, text, err := keyring.GenerateKEK(rand.Reader)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), text)
			// The hint goes to stderr so `careflow keys generate > FILE` writes
			// the key alone.
			fmt.Fprintf(cmd.ErrOrStderr(), "KEK %s: keep it in a file only careflow's user can read (umask 077; chmod 600) and set kek_file, or set CAREFLOW_KEK; keep a copy offline: losing it loses every record\n", k.ID())
			return nil
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Rewrap every data key under the current KEK (kek_file), unwrapping with kek_previous_files",
		Long: "Rewraps every live data key that is not under the current KEK, using the previous KEK that wrapped it. " +
			"Events and sealed fields do not change. Afterwards the previous KEKs can leave kek_previous_files; keep " +
			"them (offline) as long as backups of the keys database made before the rotation must stay restorable.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withKeyring(cmd, func(ctx context.Context, k *keyring.Keyring) error {
				n, err := k.Rotate(ctx)
				fmt.Fprintf(cmd.OutOrStdout(), "rewrapped %d data keys under KEK %s\n", n, k.CurrentKEKID())
				return err
			})
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Count the live data keys per KEK and the destroyed ones",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withKeyring(cmd, func(ctx context.Context, k *keyring.Keyring) error {
				counts, err := k.Counts(ctx)
				if err != nil {
					return err
				}
				return printKeyCounts(cmd.OutOrStdout(), k.CurrentKEKID(), counts)
			})
		},
	}
	bindConfigFlags(rotate.Flags())
	bindConfigFlags(status.Flags())
	cmd.AddCommand(generate, rotate, status)
	return cmd
}

func withKeyring(cmd *cobra.Command, fn func(ctx context.Context, k *keyring.Keyring) error) error {
	cfg, err := loadConfig(cmd.Flags(), os.LookupEnv)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	k, closer, err := openKeyring(ctx, cfg, cfg.logger(cmd.ErrOrStderr()))
	if err != nil {
		return err
	}
	return errors.Join(fn(ctx, k), closer.Close())
}

func printKeyCounts(w io.Writer, currentID string, counts []keyring.KEKCount) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEK\tKEYS")
	destroyed := 0
	for _, c := range counts {
		if c.Destroyed {
			destroyed += c.Keys
			continue
		}
		name := c.KEKID
		if c.KEKID == currentID {
			name += " (current)"
		}
		fmt.Fprintf(tw, "%s\t%d\n", name, c.Keys)
	}
	fmt.Fprintf(tw, "destroyed\t%d\n", destroyed)
	return tw.Flush()
}
