// Package testcerts writes CA-signed certificates for tests and the demo.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// CA is a throw-away certificate authority.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the CA certificate, for a caBundle or a ca.crt.
	PEM    []byte
	serial atomic.Int64
}

// NewCA makes a CA valid from now for validFor.
func NewCA(validFor time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tidb-backup-guard test CA"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validFor),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &CA{cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	ca.serial.Store(1)
	return ca, nil
}

// Issue signs a certificate for usage (server or client auth) naming hosts (DNS names or
// IPs; the first is also the common name) and returns it and its key in PEM.
func (ca *CA) Issue(usage x509.ExtKeyUsage, validFor time.Duration, hosts ...string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// WritePair writes a certificate and key as <name>.crt and <name>.key in dir.
func WritePair(dir, name string, certPEM, keyPEM []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for ext, data := range map[string][]byte{".crt": certPEM, ".key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name+ext), data, 0o600); err != nil {
			return fmt.Errorf("write %s%s: %w", name, ext, err)
		}
	}
	return nil
}

// ServingCert writes a fresh CA-signed serving certificate for hosts (DNS names or IPs)
// into dir as tls.crt and tls.key, valid from now for the given duration, and returns the
// CA certificate in PEM, for a webhook configuration's caBundle.
func ServingCert(dir string, validFor time.Duration, hosts ...string) ([]byte, error) {
	ca, err := NewCA(validFor)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := ca.Issue(x509.ExtKeyUsageServerAuth, validFor, hosts...)
	if err != nil {
		return nil, err
	}
	if err := WritePair(dir, "tls", certPEM, keyPEM); err != nil {
		return nil, err
	}
	return ca.PEM, nil
}
