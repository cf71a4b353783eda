package certs

import (
	"bytes"
	"crypto/x509"
	"time"

	"github.com/cert-manager/cert-manager/pkg/util/pki"
)

// Bundle is a set of CA certificates a client trusts, in order, without duplicates.
type Bundle []*x509.Certificate

// ParseBundle reads the certificates in a PEM caBundle; an empty input is an empty bundle.
func ParseBundle(data []byte) (Bundle, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	certs, err := pki.DecodeX509CertificateSetBytes(data)
	if err != nil {
		return nil, err
	}
	return Bundle(nil).Merge(certs...), nil
}

// PEM encodes the bundle.
func (b Bundle) PEM() []byte {
	var out []byte
	for _, c := range b {
		out = append(out, pemCert(c)...)
	}
	return out
}

func pemCert(c *x509.Certificate) []byte {
	out, _ := pki.EncodeX509(c) // encoding parsed DER cannot fail
	return out
}

// Contains reports whether c is in the bundle.
func (b Bundle) Contains(c *x509.Certificate) bool {
	for _, x := range b {
		if x.Equal(c) {
			return true
		}
	}
	return false
}

// Merge returns the bundle with certs appended, skipping those already present.
func (b Bundle) Merge(certs ...*x509.Certificate) Bundle {
	out := append(Bundle(nil), b...)
	for _, c := range certs {
		if c != nil && !out.Contains(c) {
			out = append(out, c)
		}
	}
	return out
}

// Prune drops expired certificates, and every certificate but current once the overlap
// since the last CA rotation has passed: by then every replica serves a certificate
// signed by current, and the old CA only widens what the API server trusts.
func (b Bundle) Prune(current *x509.Certificate, rotatedAt time.Time, overlap time.Duration, now time.Time) Bundle {
	var out Bundle
	for _, c := range b {
		switch {
		case c.Equal(current):
			out = append(out, c)
		case now.After(c.NotAfter):
		case !now.Before(rotatedAt.Add(overlap)):
		default:
			out = append(out, c)
		}
	}
	return out
}

// Equal reports whether both bundles hold the same certificates in the same order.
func (b Bundle) Equal(o Bundle) bool {
	if len(b) != len(o) {
		return false
	}
	for i := range b {
		if !b[i].Equal(o[i]) {
			return false
		}
	}
	return true
}
