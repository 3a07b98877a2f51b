package main

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Config is everything careflow serve reads at start. Sources, lowest
// first: defaults < careflow.yaml < CAREFLOW_* environment < flags.
type Config struct {
	// Addr is the HTTP listen address.
	Addr string `mapstructure:"addr"`
	// StoreURL selects the event store: sqlite://PATH (the embedded
	// default). postgres:// arrives with the PostgreSQL backend.
	StoreURL string `mapstructure:"store_url"`
	// ViewsURL is where the read models live: sqlite://PATH. Empty puts
	// them next to a SQLite event store, in <name>-views.db.
	ViewsURL string `mapstructure:"views_url"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `mapstructure:"log_level"`
	// LogFormat is text or json.
	LogFormat string `mapstructure:"log_format"`
	// ShutdownTimeout bounds how long a stop waits for requests in flight.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
}

// DefaultConfig is what careflow runs with when nothing is configured.
func DefaultConfig() Config {
	return Config{
		Addr:            "127.0.0.1:8080",
		StoreURL:        "sqlite://./data/careflow.db",
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: 15 * time.Second,
	}
}

// defaultConfigFile is read from the working directory when present.
const defaultConfigFile = "careflow.yaml"

// settings maps each Config key to its flag name and help text. The
// environment variable is CAREFLOW_ + the key in upper case.
var settings = []struct{ key, flag, help string }{
	{"addr", "addr", "HTTP listen address"},
	{"store_url", "store", "event store URL: sqlite://PATH"},
	{"views_url", "views", "read-model database URL: sqlite://PATH (default: beside the event store)"},
	{"log_level", "log-level", "log level: debug, info, warn, error"},
	{"log_format", "log-format", "log format: text or json"},
	{"shutdown_timeout", "shutdown-timeout", "how long a stop waits for requests in flight"},
}

// bindConfigFlags declares the flags for every setting on fs.
func bindConfigFlags(fs *pflag.FlagSet) {
	d := DefaultConfig()
	fs.String("config", "", "config file (default: ./careflow.yaml if present)")
	fs.String("addr", d.Addr, settings[0].help)
	fs.String("store", d.StoreURL, settings[1].help)
	fs.String("views", d.ViewsURL, settings[2].help)
	fs.String("log-level", d.LogLevel, settings[3].help)
	fs.String("log-format", d.LogFormat, settings[4].help)
	fs.Duration("shutdown-timeout", d.ShutdownTimeout, settings[5].help)
}

// loadConfig merges defaults, the config file, the environment and the
// flags that were set, then validates the result.
func loadConfig(fs *pflag.FlagSet, environ func(string) (string, bool)) (Config, error) {
	v := viper.New()
	d := DefaultConfig()
	v.SetDefault("addr", d.Addr)
	v.SetDefault("store_url", d.StoreURL)
	v.SetDefault("views_url", d.ViewsURL)
	v.SetDefault("log_level", d.LogLevel)
	v.SetDefault("log_format", d.LogFormat)
	v.SetDefault("shutdown_timeout", d.ShutdownTimeout)

	file, _ := fs.GetString("config")
	if file == "" {
		if p, ok := environ("CAREFLOW_CONFIG"); ok {
			file = p
		}
	}
	if file == "" {
		// Only careflow.yaml itself: viper's own search would also take a
		// file named just "careflow", such as the binary in its directory.
		if _, err := os.Stat(defaultConfigFile); err == nil {
			file = defaultConfigFile
		}
	}
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", file, err)
		}
	}
	for _, s := range settings {
		if val, ok := environ("CAREFLOW_" + strings.ToUpper(s.key)); ok {
			v.Set(s.key, val)
		}
		if f := fs.Lookup(s.flag); f != nil && f.Changed {
			v.Set(s.key, f.Value.String())
		}
	}
	var c Config
	if err := v.UnmarshalExact(&c); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, c.Validate()
}

// Validate returns every problem at once, each naming its setting.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s (--%s, CAREFLOW_%s): %s", key, flagOf(key), strings.ToUpper(key), fmt.Sprintf(format, args...)))
	}
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		bad("addr", "%q is not host:port", c.Addr)
	}
	if _, err := parseStoreURL(c.StoreURL); err != nil {
		bad("store_url", "%v", err)
	} else if _, err := c.viewsPath(); err != nil {
		bad("views_url", "%v", err)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		bad("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log_format", "%q is not text or json", c.LogFormat)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "%s must be positive", c.ShutdownTimeout)
	}
	return errors.Join(errs...)
}

func flagOf(key string) string {
	for _, s := range settings {
		if s.key == key {
			return s.flag
		}
	}
	return key
}

// storeLocation is a parsed store URL.
type storeLocation struct {
	Kind string // "sqlite"
	Path string // file path for sqlite
}

func parseStoreURL(raw string) (storeLocation, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return storeLocation{}, fmt.Errorf("%q is not a URL", raw)
	}
	switch u.Scheme {
	case "sqlite":
		// sqlite://./data/x.db (relative) and sqlite:///var/lib/x.db (absolute)
		path := u.Host + u.Path
		if u.Opaque != "" {
			path = u.Opaque
		}
		if path == "" {
			return storeLocation{}, fmt.Errorf("%q names no database file (sqlite://PATH)", raw)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return storeLocation{}, fmt.Errorf("%q: sqlite store URLs take no query or fragment", raw)
		}
		return storeLocation{Kind: "sqlite", Path: path}, nil
	case "postgres", "postgresql":
		return storeLocation{}, fmt.Errorf("%q: the PostgreSQL store is not available in this build yet; use sqlite://PATH", raw)
	case "":
		return storeLocation{}, fmt.Errorf("%q has no scheme; use sqlite://PATH", raw)
	default:
		return storeLocation{}, fmt.Errorf("%q: unknown store scheme %q; use sqlite://PATH", raw, u.Scheme)
	}
}

// viewsPath is the read-model database file: views_url when set, else
// beside a SQLite event store (careflow.db -> careflow-views.db).
func (c Config) viewsPath() (string, error) {
	if c.ViewsURL != "" {
		loc, err := parseStoreURL(c.ViewsURL)
		if err != nil {
			return "", err
		}
		return loc.Path, nil
	}
	loc, err := parseStoreURL(c.StoreURL)
	if err != nil {
		return "", err
	}
	ext := filepath.Ext(loc.Path)
	return strings.TrimSuffix(loc.Path, ext) + "-views" + cmp.Or(ext, ".db"), nil
}

func (c Config) logger(w interface{ Write([]byte) (int, error) }) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
