package certs

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KeyPair is a certificate with its private key, parsed and in PEM.
type KeyPair struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	KeyPEM  []byte
}

// backdate is how far before "now" a new certificate starts to be valid, so a client
// whose clock is slightly behind still accepts it: a minute, or a quarter of a short
// lifetime, so renewal at two thirds stays meaningful.
func backdate(validity time.Duration) time.Duration { return min(time.Minute, validity/4) }

// NewCA creates a self-signed ECDSA P-256 CA valid from now for validity. The certificate
// is described as a cert-manager Certificate and built with cert-manager's PKI helpers,
// the same code path cert-manager's own issuers use.
func NewCA(commonName string, validity time.Duration, now time.Time) (*KeyPair, error) {
	spec := &cmapi.Certificate{Spec: cmapi.CertificateSpec{
		CommonName: commonName,
		IsCA:       true,
		Duration:   &metav1.Duration{Duration: validity},
		PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
		Usages:     []cmapi.KeyUsage{cmapi.UsageCertSign, cmapi.UsageCRLSign, cmapi.UsageDigitalSignature},
	}}
	return issue(spec, nil, validity, now)
}

// NewServing creates an ECDSA P-256 serving certificate for names (DNS names or IP
// addresses) signed by ca.
func NewServing(ca *KeyPair, names []string, validity time.Duration, now time.Time) (*KeyPair, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("a serving certificate needs at least one DNS name or IP address")
	}
	spec := &cmapi.Certificate{Spec: cmapi.CertificateSpec{
		CommonName: names[0],
		Duration:   &metav1.Duration{Duration: validity},
		PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
		Usages:     []cmapi.KeyUsage{cmapi.UsageServerAuth, cmapi.UsageDigitalSignature},
	}}
	for _, n := range names {
		if net.ParseIP(n) != nil {
			spec.Spec.IPAddresses = append(spec.Spec.IPAddresses, n)
		} else {
			spec.Spec.DNSNames = append(spec.Spec.DNSNames, n)
		}
	}
	return issue(spec, ca, validity, now)
}

// issue signs spec with ca (self-signed when ca is nil). Validity comes from now, not
// from the wall clock, so tests of expiry are exact.
func issue(spec *cmapi.Certificate, ca *KeyPair, validity time.Duration, now time.Time) (*KeyPair, error) {
	key, err := pki.GeneratePrivateKeyForCertificate(spec)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	tmpl, err := pki.CertificateTemplateFromCertificate(spec)
	if err != nil {
		return nil, fmt.Errorf("certificate template: %w", err)
	}
	tmpl.NotBefore = now.Add(-backdate(validity))
	tmpl.NotAfter = now.Add(validity)
	issuerCert, issuerKey := tmpl, key
	if ca != nil {
		issuerCert, issuerKey = ca.Cert, ca.Key
	}
	certPEM, cert, err := pki.SignCertificate(tmpl, issuerCert, key.Public(), issuerKey)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	keyPEM, err := pki.EncodePKCS8PrivateKey(key) // PEM, "PRIVATE KEY"
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return &KeyPair{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// ParseKeyPair reads a certificate and its key from PEM.
func ParseKeyPair(certPEM, keyPEM []byte) (*KeyPair, error) {
	cert, err := pki.DecodeX509CertificateBytes(certPEM)
	if err != nil {
		return nil, fmt.Errorf("decode certificate: %w", err)
	}
	key, err := pki.DecodePrivateKeyBytes(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("decode private key: %w", err)
	}
	if ok, err := pki.PublicKeyMatchesCertificate(key.Public(), cert); err != nil || !ok {
		return nil, fmt.Errorf("private key does not match the certificate")
	}
	return &KeyPair{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// TLS returns the pair as a tls.Certificate with its leaf parsed.
func (k *KeyPair) TLS() (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(k.CertPEM, k.KeyPEM)
	if err != nil {
		return nil, err
	}
	c.Leaf = k.Cert
	return &c, nil
}

// RenewalTime is when a certificate is due for renewal: at two thirds of its lifetime,
// cert-manager's default.
func RenewalTime(c *x509.Certificate) time.Time {
	t, err := pki.RenewalTime(c.NotBefore, c.NotAfter, nil, nil, nil)
	if err != nil || t == nil {
		return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3)
	}
	return t.Time
}

// SignedBy reports whether ca signed c.
func SignedBy(c, ca *x509.Certificate) bool { return c.CheckSignatureFrom(ca) == nil }

// validAt reports whether c is valid at now.
func validAt(c *x509.Certificate, now time.Time) bool {
	return !now.Before(c.NotBefore) && !now.After(c.NotAfter)
}
