package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
)

// ServerOptions configure the HTTPS server the API server calls.
type ServerOptions struct {
	// Addr is the listen address, host:port; port 0 picks a free port (see Server.Addr).
	Addr string
	// GetCertificate returns the serving certificate for each handshake, so a rotated
	// certificate is served without a restart.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// MinTLSVersion is tls.VersionTLS12 (the default) or tls.VersionTLS13.
	MinTLSVersion uint16
	// EnableHTTP2 offers h2 in ALPN. Off by default: the API server speaks HTTP/1.1 to
	// webhooks unless told otherwise, and HTTP/2 has carried rapid-reset style attacks.
	EnableHTTP2 bool
	// Handler serves the requests (usually a mux with Webhooks.Register applied).
	Handler http.Handler
	// Log receives start, stop and serve errors.
	Log logr.Logger
	// ReadHeaderTimeout and IdleTimeout override the defaults below (tests use short ones).
	ReadHeaderTimeout, IdleTimeout time.Duration
}

// Timeouts of the webhook server. The API server gives a webhook at most 30 s
// (timeoutSeconds) and keeps idle connections for 90 s; the idle timeout is longer so
// the client, not the server, closes an idle connection (no races on reuse).
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 120 * time.Second
	shutdownTimeout   = 25 * time.Second
)

// Server is the webhook HTTPS server.
//
// Why not controller-runtime's webhook.Server (v0.25): its TLS options would serve here
// (TLSOpts for GetCertificate, the minimum version and NextProtos), but its http.Server
// is fixed in pkg/internal/httpserver: a 32 s read-header timeout and no read or write
// timeout at all, so a client that trickles a body holds a connection and a goroutine as
// long as it likes (TestServerDropsSlowHeaders needs 200 ms to be a test; the 30 s read
// and write bounds below match the API server's own webhook timeout). It also turns
// port 0 into 9443 and does not report the address it listens on, which the tests, the
// benchmarks and readiness (Listening) rely on. What is left here is an http.Server with
// those settings and a graceful shutdown.
type Server struct {
	opts      ServerOptions
	server    *http.Server
	addr      atomic.Pointer[string]
	listening atomic.Bool
}

// NewServer builds a server; Start runs it.
func NewServer(opts ServerOptions) *Server {
	if opts.MinTLSVersion == 0 {
		opts.MinTLSVersion = tls.VersionTLS12
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = readHeaderTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = idleTimeout
	}
	s := &Server{opts: opts}
	s.server = &http.Server{
		Handler:           opts.Handler,
		TLSConfig:         TLSConfig(opts.MinTLSVersion, opts.EnableHTTP2, opts.GetCertificate),
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		// TLS handshake errors from scanners and health checkers go to the debug log, not
		// to stderr unstructured.
		ErrorLog: log.New(logWriter{opts.Log}, "", 0),
	}
	if !opts.EnableHTTP2 {
		// A non-nil, empty map is how net/http is told not to serve h2 over TLS.
		s.server.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	return s
}

// logWriter turns net/http's error log lines into debug-level structured log entries.
type logWriter struct{ log logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.V(1).Info("HTTP server error", "detail", strings.TrimSpace(string(p)))
	return len(p), nil
}

// TLSConfig is the server TLS configuration: TLS 1.2 or newer, forward-secret AEAD
// suites only (the TLS 1.3 suites are fixed by Go and all strong).
func TLSConfig(minVersion uint16, enableHTTP2 bool, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	protos := []string{"http/1.1"}
	if enableHTTP2 {
		protos = []string{"h2", "http/1.1"}
	}
	return &tls.Config{
		MinVersion:     minVersion,
		GetCertificate: getCert,
		NextProtos:     protos,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}

// Start listens and serves until ctx is done, then shuts down gracefully.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.opts.Addr, err)
	}
	addr := ln.Addr().String()
	s.addr.Store(&addr)
	s.listening.Store(true)
	defer s.listening.Store(false)
	s.opts.Log.Info("Serving webhooks", "address", addr)

	done := make(chan error, 1)
	go func() { done <- s.server.Serve(tls.NewListener(ln, s.server.TLSConfig)) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve webhooks: %w", err)
	case <-ctx.Done():
	}
	s.listening.Store(false)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := s.server.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down webhook server: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve webhooks: %w", err)
	}
	return nil
}

// Addr is the address the server listens on, once it does ("" before).
func (s *Server) Addr() string {
	if p := s.addr.Load(); p != nil {
		return *p
	}
	return ""
}

// Listening reports nil while the server accepts connections.
func (s *Server) Listening() error {
	if !s.listening.Load() {
		return errors.New("webhook server is not listening")
	}
	return nil
}
