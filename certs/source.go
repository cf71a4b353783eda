package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
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
// change: on file events in the directory, and on a periodic re-read as a fallback. A
// pair that fails to load is counted and logged, and the previous one stays in use.
type FileSource struct {
	holder
	dir      string
	interval time.Duration
	log      logr.Logger
	loaded   []byte // the cert and key bytes in use, to skip reloading the same pair
}

var _ Source = (*FileSource)(nil)

// NewFileSource loads the certificate in dir; it fails if the files are missing or do not
// form a key pair, so a misconfigured server stops at start-up with a clear message.
func NewFileSource(dir string, pollInterval time.Duration, metrics *Metrics, log logr.Logger) (*FileSource, error) {
	if pollInterval <= 0 {
		pollInterval = DefaultPollInterval
	}
	s := &FileSource{holder: holder{metrics: metrics}, dir: dir, interval: pollInterval, log: log}
	if err := s.reload(); err != nil {
		return nil, fmt.Errorf("load serving certificate from %s: %w", dir, err)
	}
	return s, nil
}

// reload reads the pair and serves it if it changed.
func (s *FileSource) reload() error {
	certPEM, err := os.ReadFile(filepath.Join(s.dir, CertFile))
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(filepath.Join(s.dir, KeyFile))
	if err != nil {
		return err
	}
	both := append(append([]byte{}, certPEM...), keyPEM...)
	if bytes.Equal(both, s.loaded) {
		return nil
	}
	kp, err := ParseKeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	c, err := kp.TLS()
	if err != nil {
		return err
	}
	s.set(c)
	s.loaded = both
	s.log.Info("Loaded serving certificate", "dir", s.dir, "notAfter", kp.Cert.NotAfter, "dnsNames", kp.Cert.DNSNames)
	return nil
}

// Start watches the directory until ctx is done.
func (s *FileSource) Start(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.dir, err)
	}
	defer w.Close()
	// The directory, not the files: a Secret volume swaps a symlink, and an editor or
	// cert-manager's csi driver may replace the files.
	if err := w.Add(s.dir); err != nil {
		s.log.Info("Watching the certificate directory failed; polling only", "dir", s.dir, "error", err.Error())
	}
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-w.Events:
		case err := <-w.Errors:
			s.log.Info("Certificate watch error", "error", fmt.Sprint(err))
		}
		if err := s.reload(); err != nil {
			s.metrics.failed()
			s.log.Info("Reloading the serving certificate failed; keeping the one in use", "dir", s.dir, "error", err.Error())
		}
	}
}
