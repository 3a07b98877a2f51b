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

	"github.com/careflow/careflow/api"
)

// Config is everything careflow serve reads at start. Sources, lowest
// first: defaults < careflow.yaml < CAREFLOW_* environment < flags.
type Config struct {
	// Addr is the HTTP listen address.
	Addr string `mapstructure:"addr"`
	// StoreURL selects the event store: sqlite://PATH (the embedded
	// default). postgres:// arrives with the PostgreSQL backend.
	StoreURL string `mapstructure:"store_url"`
	// ViewsURL is where the read models live: sqlite://PATH or
	// postgres://…. Empty puts them in a PostgreSQL event store's database
	// (tables of their own), or next to a SQLite event store, in
	// <name>-views.db.
	ViewsURL string `mapstructure:"views_url"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `mapstructure:"log_level"`
	// LogFormat is text or json.
	LogFormat string `mapstructure:"log_format"`
	// AuthSecret signs access tokens (HS256, at least 32 bytes). Empty: a
	// random secret is made once and kept beside the store (<name>-auth.secret).
	AuthSecret string `mapstructure:"auth_secret"`
	// AuthIssuer and AuthAudience go into (and are required of) every token.
	AuthIssuer   string `mapstructure:"auth_issuer"`
	AuthAudience string `mapstructure:"auth_audience"`
	// AdminUsername and AdminPassword create the first system administrator
	// at start when that account does not exist yet.
	AdminUsername string `mapstructure:"admin_username"`
	AdminPassword string `mapstructure:"admin_password"`
	// ChainKeyFile is the Ed25519 key (from `careflow chain keygen`) that
	// signs checkpoints of the tamper-evident chain. Empty: the chain is kept
	// but no checkpoint is signed.
	ChainKeyFile string `mapstructure:"chain_key_file"`
	// BusTransport carries committed events to the reactions: gochannel
	// (in-process, the default), nats (JetStream) or postgres.
	BusTransport   string `mapstructure:"bus_transport"`
	BusNATSURL     string `mapstructure:"bus_nats_url"`
	BusPostgresURL string `mapstructure:"bus_postgres_url"`
	// SMTP delivers notifications by mail when SMTPHost is set (otherwise
	// they are logged). Mail holds no PHI: the kind, urgency and id only.
	SMTPHost     string `mapstructure:"smtp_host"`
	SMTPPort     int    `mapstructure:"smtp_port"`
	SMTPFrom     string `mapstructure:"smtp_from"`
	SMTPUsername string `mapstructure:"smtp_username"`
	SMTPPassword string `mapstructure:"smtp_password"`
	SMTPLinkBase string `mapstructure:"smtp_link_base"`
	// SMTPAddresses maps user ids to mail addresses (careflow.yaml only):
	// careflow keeps no contact details in its event log.
	SMTPAddresses map[string]string `mapstructure:"smtp_addresses"`
	// DataDir holds the local files (read models, access log, refresh
	// tokens, reactions) when the event store is not a SQLite file, which
	// otherwise has them beside it.
	DataDir string `mapstructure:"data_dir"`
	// StoreMigrate creates or upgrades a PostgreSQL store's schema at start
	// (`careflow migrate` does it on its own).
	StoreMigrate bool `mapstructure:"store_migrate"`
	// StoreAllowAsyncCommit runs on a PostgreSQL server with
	// synchronous_commit=off, which acknowledges commits it can lose.
	StoreAllowAsyncCommit bool `mapstructure:"store_allow_async_commit"`
	// WebhooksAllowInternal lets webhook endpoints point at loopback and
	// private addresses (development only).
	WebhooksAllowInternal bool `mapstructure:"webhooks_allow_internal"`
	// TLSCertFile and TLSKeyFile (PEM), both or neither, make serve
	// answer HTTPS only (TLS 1.2 or newer, Go's default cipher suites).
	TLSCertFile string `mapstructure:"tls_cert_file"`
	TLSKeyFile  string `mapstructure:"tls_key_file"`
	// BehindTLSProxy says a proxy terminates TLS in front of careflow:
	// responses carry Strict-Transport-Security although careflow serves
	// plain HTTP to the proxy.
	BehindTLSProxy bool `mapstructure:"behind_tls_proxy"`
	// KEKFile holds the key-encryption key that wraps the per-client data
	// keys (careflow keys generate; mode 0600). KEK is the key text itself
	// (CAREFLOW_KEK or the file; no flag: a command line is visible to every
	// user). Neither with a SQLite store: one is made beside the store.
	KEKFile string `mapstructure:"kek_file"`
	KEK     string `mapstructure:"kek"`
	// KEKPreviousFiles are older KEKs still accepted until `careflow keys
	// rotate` has rewrapped every data key.
	KEKPreviousFiles []string `mapstructure:"kek_previous_files"`
	// KeysURL is where the wrapped data keys live: sqlite://PATH or
	// postgres://. Empty: beside a SQLite store (<name>-keys.db), in a
	// PostgreSQL store's own database.
	KeysURL string `mapstructure:"keys_url"`
	// DebugAddr, when set, serves Go's profiler (net/http/pprof) on a
	// loopback address of its own, apart from the API: for measuring, never
	// exposed.
	DebugAddr string `mapstructure:"debug_addr"`
	// OIDCIssuer, OIDCJWKSURL and OIDCAudience, all or none, also accept
	// access tokens of a clinic's own OpenID Connect identity provider
	// (ADR 0012): iss, key set (https) and aud. OIDCUsernameClaim names
	// the careflow account a token acts as; roles stay careflow's.
	OIDCIssuer        string `mapstructure:"oidc_issuer"`
	OIDCJWKSURL       string `mapstructure:"oidc_jwks_url"`
	OIDCAudience      string `mapstructure:"oidc_audience"`
	OIDCUsernameClaim string `mapstructure:"oidc_username_claim"`
	// Demo seeds the demo clinic at start (serve --demo only; not a setting).
	Demo bool `mapstructure:"-"`
	// ShutdownTimeout bounds how long a stop waits for requests in flight.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// Procs is Go's GOMAXPROCS for serve; 0: twice the CPUs (tuning.go).
	Procs int `mapstructure:"procs"`
	// GCPercent is Go's GOGC for serve: how far the heap grows past what
	// is live before a collection (-1: only at MemoryLimit). MemoryLimit
	// is Go's soft memory limit (GOMEMLIMIT syntax, such as 128MiB; 0: none).
	// The environment's GOGC and GOMEMLIMIT win over both (memory.go).
	GCPercent   int    `mapstructure:"gc_percent"`
	MemoryLimit string `mapstructure:"memory_limit"`
}

// DefaultConfig is what careflow runs with when nothing is configured.
func DefaultConfig() Config {
	return Config{
		Addr:            "127.0.0.1:8080",
		StoreURL:        "sqlite://./data/careflow.db",
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: 15 * time.Second,
		AuthIssuer:      "careflow",
		AuthAudience:    "careflow",
		BusTransport:    "gochannel",
		BusNATSURL:      "nats://127.0.0.1:4222",
		SMTPPort:        25,
		DataDir:         "./data",
		StoreMigrate:    true,
		// The OpenID Connect standard claim for a user's short name.
		OIDCUsernameClaim: "preferred_username",
		GCPercent:         defaultGCPercent,
		MemoryLimit:       defaultMemoryLimit,
	}
}

// defaultConfigFile is read from the working directory when present.
const defaultConfigFile = "careflow.yaml"

// settings maps each Config key to its flag name and help text. The
// environment variable is CAREFLOW_ + the key in upper case.
var settings = []struct{ key, flag, help string }{
	{"addr", "addr", "HTTP listen address"},
	{"store_url", "store", "event store URL: sqlite://PATH"},
	{"views_url", "views", "read-model database URL: sqlite://PATH or postgres://… (default: the PostgreSQL store's database, or beside a SQLite store)"},
	{"log_level", "log-level", "log level: debug, info, warn, error"},
	{"log_format", "log-format", "log format: text or json"},
	{"shutdown_timeout", "shutdown-timeout", "how long a stop waits for requests in flight"},
	{"auth_secret", "auth-secret", "access-token signing secret, 32+ bytes (default: generated and kept beside the store)"},
	{"auth_issuer", "auth-issuer", "issuer claim of access tokens"},
	{"auth_audience", "auth-audience", "audience claim of access tokens"},
	{"admin_username", "admin-username", "username of the first system administrator, created at start if missing"},
	{"admin_password", "admin-password", "password of the first system administrator"},
	{"chain_key_file", "chain-key-file", "Ed25519 key file that signs chain checkpoints (careflow chain keygen)"},
	{"bus_transport", "bus-transport", "event bus transport: gochannel (in-process), nats or postgres"},
	{"bus_nats_url", "bus-nats-url", "NATS server for the nats transport"},
	{"bus_postgres_url", "bus-postgres-url", "PostgreSQL database for the postgres transport"},
	{"smtp_host", "smtp-host", "mail server for notifications (empty: notifications are logged)"},
	{"smtp_port", "smtp-port", "mail server port"},
	{"smtp_from", "smtp-from", "sender address of notification mail"},
	{"smtp_username", "smtp-username", "mail server user (PLAIN auth)"},
	{"smtp_password", "smtp-password", "mail server password"},
	{"smtp_link_base", "smtp-link-base", "base URL put before /notifications/<id> in mail"},
	{"data_dir", "data-dir", "directory for local files when the event store is PostgreSQL"},
	{"store_migrate", "store-migrate", "create or upgrade a PostgreSQL store's schema at start"},
	{"store_allow_async_commit", "store-allow-async-commit", "run on a PostgreSQL server with synchronous_commit=off (acknowledged events can be lost)"},
	{"webhooks_allow_internal", "webhooks-allow-internal", "let webhooks reach loopback and private addresses (development only)"},
	{"tls_cert_file", "tls-cert-file", "PEM certificate (chain) to serve HTTPS with; needs tls_key_file"},
	{"tls_key_file", "tls-key-file", "PEM private key of tls_cert_file"},
	{"behind_tls_proxy", "behind-tls-proxy", "a proxy terminates TLS in front of careflow: send Strict-Transport-Security"},
	{"kek_file", "kek-file", "key-encryption key file (careflow keys generate, mode 0600) (default with SQLite: made beside the store)"},
	{"kek", "", "the key-encryption key itself (environment or config file only)"},
	{"kek_previous_files", "kek-previous-files", "comma-separated older KEK files, until careflow keys rotate has run"},
	{"debug_addr", "debug-addr", "loopback host:port to serve the Go profiler (/debug/pprof/) on; empty: off"},
	{"keys_url", "keys", "data-key database URL: sqlite://PATH or postgres:// (default: beside a SQLite store, else the store's database)"},
	{"oidc_issuer", "oidc-issuer", "iss of an external OpenID Connect issuer whose access tokens are accepted (empty: off)"},
	{"oidc_jwks_url", "oidc-jwks-url", "that issuer's JWKS URL (https)"},
	{"oidc_audience", "oidc-audience", "aud its tokens must carry (careflow's client id there)"},
	{"oidc_username_claim", "oidc-username-claim", "claim naming the careflow account an external token acts as"},
	{"procs", "procs", "Go GOMAXPROCS for serve (0: twice the CPUs); the GOMAXPROCS variable wins"},
	{"gc_percent", "gc-percent", "Go GC percent for serve (GOGC; -1: collect only at memory_limit); the GOGC variable wins"},
	{"memory_limit", "memory-limit", "Go soft memory limit for serve, such as 128MiB (0: none); the GOMEMLIMIT variable wins"},
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
	fs.String("auth-secret", d.AuthSecret, settings[6].help)
	fs.String("auth-issuer", d.AuthIssuer, settings[7].help)
	fs.String("auth-audience", d.AuthAudience, settings[8].help)
	fs.String("admin-username", d.AdminUsername, settings[9].help)
	fs.String("admin-password", d.AdminPassword, settings[10].help)
	fs.String("chain-key-file", d.ChainKeyFile, settings[11].help)
	fs.String("bus-transport", d.BusTransport, settings[12].help)
	fs.String("bus-nats-url", d.BusNATSURL, settings[13].help)
	fs.String("bus-postgres-url", d.BusPostgresURL, settings[14].help)
	fs.String("smtp-host", d.SMTPHost, settings[15].help)
	fs.Int("smtp-port", d.SMTPPort, settings[16].help)
	fs.String("smtp-from", d.SMTPFrom, settings[17].help)
	fs.String("smtp-username", d.SMTPUsername, settings[18].help)
	fs.String("smtp-password", d.SMTPPassword, settings[19].help)
	fs.String("smtp-link-base", d.SMTPLinkBase, settings[20].help)
	fs.String("data-dir", d.DataDir, settings[21].help)
	fs.Bool("store-migrate", d.StoreMigrate, settings[22].help)
	fs.Bool("store-allow-async-commit", d.StoreAllowAsyncCommit, settings[23].help)
	fs.Bool("webhooks-allow-internal", d.WebhooksAllowInternal, settings[24].help)
	fs.String("tls-cert-file", d.TLSCertFile, helpOf("tls_cert_file"))
	fs.String("tls-key-file", d.TLSKeyFile, helpOf("tls_key_file"))
	fs.Bool("behind-tls-proxy", d.BehindTLSProxy, helpOf("behind_tls_proxy"))
	fs.String("kek-file", d.KEKFile, helpOf("kek_file"))
	fs.String("kek-previous-files", "", helpOf("kek_previous_files"))
	fs.String("keys", d.KeysURL, helpOf("keys_url"))
	fs.String("debug-addr", d.DebugAddr, helpOf("debug_addr"))
	fs.String("oidc-issuer", d.OIDCIssuer, helpOf("oidc_issuer"))
	fs.String("oidc-jwks-url", d.OIDCJWKSURL, helpOf("oidc_jwks_url"))
	fs.String("oidc-audience", d.OIDCAudience, helpOf("oidc_audience"))
	fs.String("oidc-username-claim", d.OIDCUsernameClaim, helpOf("oidc_username_claim"))
	fs.Int("procs", d.Procs, helpOf("procs"))
	fs.Int("gc-percent", d.GCPercent, helpOf("gc_percent"))
	fs.String("memory-limit", d.MemoryLimit, helpOf("memory_limit"))
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
	v.SetDefault("auth_secret", d.AuthSecret)
	v.SetDefault("auth_issuer", d.AuthIssuer)
	v.SetDefault("auth_audience", d.AuthAudience)
	v.SetDefault("admin_username", d.AdminUsername)
	v.SetDefault("admin_password", d.AdminPassword)
	v.SetDefault("chain_key_file", d.ChainKeyFile)
	v.SetDefault("bus_transport", d.BusTransport)
	v.SetDefault("bus_nats_url", d.BusNATSURL)
	v.SetDefault("bus_postgres_url", d.BusPostgresURL)
	v.SetDefault("smtp_host", d.SMTPHost)
	v.SetDefault("smtp_port", d.SMTPPort)
	v.SetDefault("smtp_from", d.SMTPFrom)
	v.SetDefault("smtp_username", d.SMTPUsername)
	v.SetDefault("smtp_password", d.SMTPPassword)
	v.SetDefault("smtp_link_base", d.SMTPLinkBase)
	v.SetDefault("data_dir", d.DataDir)
	v.SetDefault("store_migrate", d.StoreMigrate)
	v.SetDefault("store_allow_async_commit", d.StoreAllowAsyncCommit)
	v.SetDefault("webhooks_allow_internal", d.WebhooksAllowInternal)
	v.SetDefault("tls_cert_file", d.TLSCertFile)
	v.SetDefault("tls_key_file", d.TLSKeyFile)
	v.SetDefault("behind_tls_proxy", d.BehindTLSProxy)
	v.SetDefault("kek_file", d.KEKFile)
	v.SetDefault("kek", d.KEK)
	v.SetDefault("keys_url", d.KeysURL)
	v.SetDefault("debug_addr", d.DebugAddr)
	v.SetDefault("oidc_issuer", d.OIDCIssuer)
	v.SetDefault("oidc_jwks_url", d.OIDCJWKSURL)
	v.SetDefault("oidc_audience", d.OIDCAudience)
	v.SetDefault("oidc_username_claim", d.OIDCUsernameClaim)
	v.SetDefault("procs", d.Procs)
	v.SetDefault("gc_percent", d.GCPercent)
	v.SetDefault("memory_limit", d.MemoryLimit)

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
	if c.DebugAddr != "" {
		if host, _, err := net.SplitHostPort(c.DebugAddr); err != nil || !isLoopbackHost(host) {
			bad("debug_addr", "%q must be a loopback host:port (the profiler shows memory that may hold PHI)", c.DebugAddr)
		}
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "%s must be positive", c.ShutdownTimeout)
	}
	if c.AuthSecret != "" && len(c.AuthSecret) < minAuthSecret {
		bad("auth_secret", "is %d bytes; at least %d are needed", len(c.AuthSecret), minAuthSecret)
	}
	if c.AuthIssuer == "" {
		bad("auth_issuer", "must not be empty")
	}
	if c.AuthAudience == "" {
		bad("auth_audience", "must not be empty")
	}
	switch c.BusTransport {
	case "gochannel", "nats":
	case "postgres":
		if c.BusPostgresURL == "" {
			bad("bus_postgres_url", "the postgres bus transport needs a database URL")
		}
	default:
		bad("bus_transport", "%q is not gochannel, nats or postgres", c.BusTransport)
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if c.SMTPHost != "" {
		if c.SMTPPort < 1 || c.SMTPPort > 65535 {
			bad("smtp_port", "%d is not a port", c.SMTPPort)
		}
		if c.SMTPFrom == "" {
			bad("smtp_from", "mail needs a sender address")
		}
	}
	c.validateTLS(bad)
	if err := c.validateKeys(bad); err != nil {
		errs = append(errs, err)
	}
	if (c.AdminUsername == "") != (c.AdminPassword == "") {
		bad("admin_username", "admin_username and admin_password go together")
	}
	c.validateOIDC(bad)
	limit, err := parseByteSize(c.MemoryLimit)
	if err != nil {
		bad("memory_limit", "%v", err)
	}
	if c.Procs < 0 {
		bad("procs", "%d must be 0 (twice the CPUs) or more", c.Procs)
	}
	switch {
	case c.GCPercent < -1 || c.GCPercent == 0:
		bad("gc_percent", "%d must be positive, or -1 to collect only at memory_limit", c.GCPercent)
	case c.GCPercent == -1 && err == nil && limit == 0:
		bad("gc_percent", "-1 needs a memory_limit: without one the heap would never be collected")
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
	Kind string // "sqlite" or "postgres"
	Path string // file path for sqlite
	URL  string // connection URL for postgres
}

// redactURL hides a password in a URL that goes into a message.
func redactURL(u *url.URL) string { return u.Redacted() }

func parseStoreURL(raw string) (storeLocation, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return storeLocation{}, errors.New("the store URL does not parse as a URL")
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
		if u.Host == "" && u.Query().Get("host") == "" {
			return storeLocation{}, fmt.Errorf("%s names no server (postgres://USER@HOST:PORT/DB)", redactURL(u))
		}
		return storeLocation{Kind: "postgres", URL: raw}, nil
	case "":
		return storeLocation{}, fmt.Errorf("%q has no scheme; use sqlite://PATH or postgres://USER@HOST/DB", raw)
	default:
		return storeLocation{}, fmt.Errorf("%s: unknown store scheme %q; use sqlite://PATH or postgres://USER@HOST/DB", redactURL(u), u.Scheme)
	}
}

// minAuthSecret is the shortest accepted token secret (256 bits).
const minAuthSecret = 32

// besideStore names a file next to the event store: careflow.db ->
// careflow<suffix>. Only SQLite stores have a directory to put it in.
func (c Config) besideStore(suffix string) (string, error) {
	loc, err := parseStoreURL(c.StoreURL)
	if err != nil {
		return "", err
	}
	if loc.Kind != "sqlite" {
		return filepath.Join(c.DataDir, "careflow"+suffix), nil
	}
	return strings.TrimSuffix(loc.Path, filepath.Ext(loc.Path)) + suffix, nil
}

// viewsPath is where the read models live, as projections.OpenDB takes
// it: views_url when set (a file path, or a postgres:// URL), else the
// PostgreSQL event store's own database, else a file beside a SQLite
// event store (careflow.db -> careflow-views.db).
func (c Config) viewsPath() (string, error) {
	if c.ViewsURL != "" {
		loc, err := parseStoreURL(c.ViewsURL)
		if err != nil {
			return "", err
		}
		return cmp.Or(loc.Path, loc.URL), nil
	}
	loc, err := parseStoreURL(c.StoreURL)
	if err != nil {
		return "", err
	}
	if loc.Kind == "postgres" {
		return loc.URL, nil
	}
	return c.besideStore("-views" + cmp.Or(filepath.Ext(loc.Path), ".db"))
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

// isLoopbackHost reports whether host names the loopback interface.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateOIDC checks the external OpenID Connect issuer settings: all
// empty is off; otherwise issuer, key set and audience go together.
func (c Config) validateOIDC(bad func(key, format string, args ...any)) {
	if c.OIDCIssuer == "" && c.OIDCJWKSURL == "" && c.OIDCAudience == "" {
		return
	}
	if (c.OIDCIssuer == "") != (c.OIDCJWKSURL == "") {
		bad("oidc_issuer", "oidc_issuer and oidc_jwks_url go together")
	}
	if c.OIDCAudience == "" {
		bad("oidc_audience", "is required with an OpenID Connect issuer (without it any token the issuer made for another application would pass)")
	}
	if c.OIDCIssuer != "" && c.OIDCIssuer == c.AuthIssuer {
		bad("oidc_issuer", "%q is careflow's own auth_issuer; the two must differ", c.OIDCIssuer)
	}
	if c.OIDCJWKSURL != "" {
		if err := api.CheckJWKSURL(c.OIDCJWKSURL); err != nil {
			bad("oidc_jwks_url", "%v", err)
		}
	}
	if c.OIDCUsernameClaim == "" {
		bad("oidc_username_claim", "must not be empty")
	}
}
