package main

import (
	"crypto/tls"
	"fmt"
	"os"
)

// helpOf is the help text of a setting.
func helpOf(key string) string {
	for _, s := range settings {
		if s.key == key {
			return s.help
		}
	}
	return ""
}

// validateTLS checks the TLS settings: both files or neither, and each
// readable.
func (c Config) validateTLS(bad func(key, format string, args ...any)) {
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("tls_cert_file", "tls_cert_file and tls_key_file go together")
		return
	}
	for _, f := range []struct{ key, path string }{{"tls_cert_file", c.TLSCertFile}, {"tls_key_file", c.TLSKeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.ReadFile(f.path); err != nil {
			bad(f.key, "cannot read %s: %v", f.path, err)
		}
	}
}

// tlsConfig is serve's TLS configuration, nil when TLS is not configured:
// TLS 1.2 or newer with Go's default (secure) cipher suites. The key pair
// is loaded at start so a bad one stops the service at once.
func (c Config) tlsConfig() (*tls.Config, error) {
	if c.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls_cert_file/tls_key_file: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}
