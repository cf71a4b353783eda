package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tidb-backup-guard/tidb-backup-guard/certs"
	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testcerts"
)

// startServer runs the real TLS server on loopback with short timeouts; edit may change
// the options.
func startServer(t *testing.T, edit ...func(*ServerOptions)) (*Server, *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	ca, err := testcerts.ServingCert(dir, time.Hour, "127.0.0.1")
	require.NoError(t, err)
	src, err := certs.NewFileSource(dir, time.Hour, nil, logr.Discard())
	require.NoError(t, err)
	mux := http.NewServeMux()
	(&Webhooks{Config: defaults.DefaultConfig(), Log: logr.Discard()}).Register(mux)
	opts := ServerOptions{Addr: "127.0.0.1:0", GetCertificate: src.GetCertificate, Handler: mux, Log: logr.Discard(),
		ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}
	for _, e := range edit {
		e(&opts)
	}
	s := NewServer(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	t.Cleanup(func() { cancel(); assert.NoError(t, <-done) })
	require.Eventually(t, func() bool { return s.Listening() == nil }, 5*time.Second, 5*time.Millisecond)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return s, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// closedWithin reports whether the server closes conn within d.
func closedWithin(conn net.Conn, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.ReadAll(conn)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

func TestServerDropsSlowHeaders(t *testing.T) {
	s, cfg := startServer(t)
	conn, err := tls.Dial("tcp", s.Addr(), cfg)
	require.NoError(t, err)
	defer conn.Close()
	// Headers that never end (slowloris): the server must hang up.
	_, err = conn.Write([]byte("POST " + MutateBackupPath + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"))
	require.NoError(t, err)
	assert.True(t, closedWithin(conn, 5*time.Second), "the connection outlived the read-header timeout")
}

func TestServerClosesIdleConnections(t *testing.T) {
	s, cfg := startServer(t)
	conn, err := tls.Dial("tcp", s.Addr(), cfg)
	require.NoError(t, err)
	defer conn.Close()
	body := mustRead(t, "testdata/create-snapshot-backup.json")
	req, err := http.NewRequest(http.MethodPost, "https://"+s.Addr()+ValidateBackupPath, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	require.NoError(t, req.Write(conn))
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	require.NoError(t, err)
	assert.Contains(t, string(buf[:n]), "200 OK")
	assert.True(t, closedWithin(conn, 5*time.Second), "the idle connection was kept past the idle timeout")
}

func TestServerRejectsOversizedBodies(t *testing.T) {
	s, cfg := startServer(t)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := c.Post("https://"+s.Addr()+MutateBackupPath, "application/json", bytes.NewReader(make([]byte, DefaultMaxRequestBytes+1)))
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
}

// HTTP/2 and a TLS 1.3 floor, when asked for.
func TestServerTLSOptions(t *testing.T) {
	s, cfg := startServer(t, func(o *ServerOptions) { o.EnableHTTP2, o.MinTLSVersion = true, tls.VersionTLS13 })
	pool := cfg.RootCAs

	_, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12})
	assert.Error(t, err, "TLS 1.2 refused under a 1.3 floor")
	conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}})
	require.NoError(t, err)
	defer conn.Close()
	assert.Equal(t, "h2", conn.ConnectionState().NegotiatedProtocol)
	assert.Equal(t, uint16(tls.VersionTLS13), conn.ConnectionState().Version)

	// A real request over HTTP/2, not just the ALPN agreement.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	resp, err := c.Get("https://" + s.Addr() + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 2, resp.ProtoMajor)
}
