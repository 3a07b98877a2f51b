package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// into dir, and returns their paths and a pool trusting it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "careflow test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeAnswersHTTPSOnlyWithTLS12OrNewer(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.StoreURL = "sqlite://" + filepath.Join(dir, "careflow.db")
	cfg.TLSCertFile, cfg.TLSKeyFile = certFile, keyFile
	require.NoError(t, cfg.Validate())

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), ready) }()
	defer func() {
		cancel()
		assert.NoError(t, <-done)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve stopped at start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not start")
	}

	client := func(max uint16) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: max}}}
	}
	resp, err := client(0).Get("https://" + addr + "/healthz")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "max-age=63072000; includeSubDomains", resp.Header.Get("Strict-Transport-Security"))
	assert.GreaterOrEqual(t, resp.TLS.Version, uint16(tls.VersionTLS12))
	resp.Body.Close()

	_, err = client(tls.VersionTLS11).Get("https://" + addr + "/healthz")
	require.Error(t, err, "TLS 1.1 is refused")

	resp, err = http.Get("http://" + addr + "/healthz")
	if err == nil {
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP gets no answer but the TLS server's refusal")
		resp.Body.Close()
	}
}

func TestTLSSettingsAreValidated(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir)
	cfg := DefaultConfig()
	cfg.TLSCertFile = certFile
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tls_cert_file and tls_key_file go together")

	cfg.TLSKeyFile = filepath.Join(dir, "missing.pem")
	err = cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tls_key_file")

	cfg.TLSKeyFile = keyFile
	require.NoError(t, cfg.Validate())
	tc, err := cfg.tlsConfig()
	require.NoError(t, err)
	assert.Equal(t, uint16(tls.VersionTLS12), tc.MinVersion)
	assert.Nil(t, tc.CipherSuites, "Go's default secure suites")
}
