package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/careflow/careflow/projections/notify"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	bindConfigFlags(fs)
	require.NoError(t, fs.Parse(args))
	return fs
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestConfigDefaults(t *testing.T) {
	t.Chdir(t.TempDir()) // no careflow.yaml here
	c, err := loadConfig(flags(t), env(nil))
	require.NoError(t, err)
	assert.Equal(t, DefaultConfig(), c)
	assert.Equal(t, "127.0.0.1:8080", c.Addr)
	assert.Equal(t, "sqlite://./data/careflow.db", c.StoreURL)
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "careflow.yaml"), []byte(
		"addr: 127.0.0.1:9000\nstore_url: sqlite://./file.db\nlog_level: debug\nshutdown_timeout: 3s\n"), 0o600))

	c, err := loadConfig(flags(t), env(nil))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:9000", c.Addr, "the file beats the defaults")
	assert.Equal(t, "debug", c.LogLevel)
	assert.Equal(t, 3*time.Second, c.ShutdownTimeout)

	c, err = loadConfig(flags(t), env(map[string]string{"CAREFLOW_ADDR": "127.0.0.1:9100", "CAREFLOW_STORE_URL": "sqlite://./env.db"}))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:9100", c.Addr, "the environment beats the file")
	assert.Equal(t, "sqlite://./env.db", c.StoreURL)
	assert.Equal(t, "debug", c.LogLevel, "what the environment does not set still comes from the file")

	c, err = loadConfig(flags(t, "--addr", "127.0.0.1:9200"), env(map[string]string{"CAREFLOW_ADDR": "127.0.0.1:9100"}))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:9200", c.Addr, "flags beat the environment")
	assert.Equal(t, "sqlite://./file.db", c.StoreURL)
}

func TestConfigExplicitFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(t.TempDir())
	path := filepath.Join(dir, "other.yaml")
	require.NoError(t, os.WriteFile(path, []byte("addr: 127.0.0.1:9300\n"), 0o600))
	c, err := loadConfig(flags(t, "--config", path), env(nil))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:9300", c.Addr)

	_, err = loadConfig(flags(t, "--config", filepath.Join(dir, "missing.yaml")), env(nil))
	assert.ErrorContains(t, err, "missing.yaml")

	require.NoError(t, os.WriteFile(path, []byte("adr: typo\n"), 0o600))
	_, err = loadConfig(flags(t, "--config", path), env(nil))
	assert.ErrorContains(t, err, "adr", "an unknown key in the file is reported, not ignored")
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	t.Chdir(t.TempDir())
	_, err := loadConfig(flags(t, "--addr", "nonsense", "--store", "mysql://x", "--log-level", "loud",
		"--log-format", "xml", "--shutdown-timeout", "0s"), env(nil))
	require.Error(t, err)
	for _, want := range []string{"addr (--addr, CAREFLOW_ADDR)", "store_url (--store, CAREFLOW_STORE_URL)", "mysql",
		"log_level", "loud", "log_format", "xml", "shutdown_timeout"} {
		assert.ErrorContains(t, err, want)
	}
}

func TestParseStoreURL(t *testing.T) {
	for raw, want := range map[string]string{
		"sqlite://./data/careflow.db":   "./data/careflow.db",
		"sqlite:///var/lib/careflow.db": "/var/lib/careflow.db",
		"sqlite://careflow.db":          "careflow.db",
	} {
		loc, err := parseStoreURL(raw)
		require.NoError(t, err, raw)
		assert.Equal(t, "sqlite", loc.Kind)
		assert.Equal(t, want, loc.Path, raw)
	}
	loc, err := parseStoreURL("postgres://careflow:secret@db.internal:5432/careflow?sslmode=require")
	require.NoError(t, err)
	assert.Equal(t, "postgres", loc.Kind)
	assert.Equal(t, "postgres://careflow:secret@db.internal:5432/careflow?sslmode=require", loc.URL)
	_, err = parseStoreURL("mysql://u:hunter2@h/db")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2", "a password never reaches a message")

	for _, raw := range []string{"", "sqlite://", "./careflow.db", "mysql://h/db", "sqlite://x.db?mode=ro", "postgres:///db"} {
		_, err := parseStoreURL(raw)
		assert.Error(t, err, raw)
	}
}

func TestConfigIgnoresTheBinaryBesideIt(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	// A file named "careflow" (the binary) must not be taken for the config.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "careflow"), []byte("\x7fELF\x00\x01binary"), 0o700))
	c, err := loadConfig(flags(t), env(nil))
	require.NoError(t, err)
	assert.Equal(t, DefaultConfig(), c)
}

func TestConfigSMTPFromTheFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "careflow.yaml"), []byte(
		"smtp_host: 127.0.0.1\nsmtp_port: 2525\nsmtp_from: careflow@clinic.example\nsmtp_addresses:\n  provider-1: ada@clinic.example\n"), 0o600))
	c, err := loadConfig(flags(t), env(nil))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", c.SMTPHost)
	assert.Equal(t, 2525, c.SMTPPort)
	assert.Equal(t, map[string]string{"provider-1": "ada@clinic.example"}, c.SMTPAddresses)

	a := &app{cfg: c}
	d, err := a.deliverer()
	require.NoError(t, err)
	assert.IsType(t, &notify.SMTPDeliverer{}, d, "a configured mail server delivers by mail")

	a.cfg.SMTPHost = ""
	d, err = a.deliverer()
	require.NoError(t, err)
	assert.IsType(t, notify.LogDeliverer{}, d, "without one, notifications are logged")

	_, err = loadConfig(flags(t, "--smtp-from", "", "--smtp-port", "0"), env(nil))
	assert.ErrorContains(t, err, "smtp_port")
	assert.ErrorContains(t, err, "smtp_from")
}

func TestDebugAddrMustBeLoopback(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DebugAddr = "0.0.0.0:6060"
	assert.ErrorContains(t, cfg.Validate(), "debug_addr")
	for _, ok := range []string{"127.0.0.1:6060", "localhost:0", "[::1]:6060"} {
		cfg.DebugAddr = ok
		assert.NoError(t, cfg.Validate(), ok)
	}
}
