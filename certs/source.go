package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
)

// Source provides the serving certificate.
type Source interface {
	// GetCertificate returns the certificate to serve; it suits tls.Config.
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Start keeps the certificate current until ctx is done.
	Start(ctx context.Context) error
}

// Check returns nil when src has a certificate whose leaf is valid at now.
func Check(src Source, now time.Time) error {
	cert, err := src.GetCertificate(nil)
	if err != nil {
		return fmt.Errorf("get serving certificate: %w", err)
	}
	if cert == nil || len(cert.Certificate) == 0 {
		return errors.New("no serving certificate loaded")
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("parse serving certificate: %w", err)
		}
	}
	switch {
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("serving certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	case now.After(leaf.NotAfter):
		return fmt.Errorf("serving certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// Names of the files in a certificate directory, as a kubernetes.io/tls Secret mounts them.
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
)

// DefaultPollInterval is how often a FileSource re-reads its files even without a file
// event: Secret volumes update through symlink swaps that some watchers miss.
const DefaultPollInterval = 10 * time.Second

// FileSource serves tls.crt and tls.key from a directory and reloads them when they
// change. It is controller-runtime's certwatcher (file events, and a periodic re-read as
// a fallback; a pair that fails to load is counted and the previous one stays in use),
// with our metrics fed from its callback.
type FileSource struct {
	*certwatcher.CertWatcher
}

var _ Source = (*FileSource)(nil)

// NewFileSource loads the certificate in dir; it fails if the files are missing or do not
// form a key pair, so a misconfigured server stops at start-up with a clear message.
func NewFileSource(dir string, pollInterval time.Duration, metrics *Metrics, log logr.Logger) (*FileSource, error) {
	if pollInterval <= 0 {
		pollInterval = DefaultPollInterval
	}
	cw, err := certwatcher.New(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("load serving certificate from %s: %w", dir, err)
	}
	// Called at once with the pair just read, then with each new one.
	cw.RegisterCallback(func(c tls.Certificate) {
		metrics.loaded(&c)
		if c.Leaf != nil {
			log.Info("Loaded serving certificate", "dir", dir, "notAfter", c.Leaf.NotAfter, "dnsNames", c.Leaf.DNSNames)
		}
	})
	return &FileSource{cw.WithWatchInterval(pollInterval)}, nil
}
