package certs

import (
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"time"
)

// State is the self-signed material, as kept in the Secret.
type State struct {
	// CA signs the serving certificate.
	CA *KeyPair
	// Serving is the certificate the webhook serves.
	Serving *KeyPair
	// Bundle is what the webhook configurations should trust: CA, plus the previous CA
	// during the overlap after a rotation.
	Bundle Bundle
	// RotatedAt is when CA became the signer.
	RotatedAt time.Time
}

// SelfSignedConfig sets names and lifetimes of the self-signed certificates.
type SelfSignedConfig struct {
	// Names are the serving certificate's DNS names and IP addresses (the Service's).
	Names []string
	// CAValidity and CertValidity are the lifetimes; each is renewed at two thirds.
	CAValidity, CertValidity time.Duration
	// Overlap is how long the previous CA stays trusted after a rotation. It must exceed
	// the time every replica needs to load the new certificate.
	Overlap time.Duration
}

// Validate checks the configuration.
func (c SelfSignedConfig) Validate() error {
	switch {
	case len(c.Names) == 0:
		return fmt.Errorf("the serving certificate needs at least one DNS name")
	case c.CAValidity <= 0 || c.CertValidity <= 0 || c.Overlap <= 0:
		return fmt.Errorf("validities and overlap must be positive")
	case c.CertValidity > c.CAValidity:
		return fmt.Errorf("the serving certificate cannot outlive its CA")
	}
	return nil
}

// Plan returns the state the Secret should hold at now, and a short reason when it
// differs from cur ("" when cur is fine). trusted is what the webhook configurations
// trust today: when a new CA must be made from nothing (no Secret, or an expired CA), the
// CAs still trusted stay in the bundle, so replicas still serving an older certificate
// stay reachable until they load the new one. Plan is a pure function of its inputs and
// the randomness of new keys.
func Plan(cur *State, trusted Bundle, cfg SelfSignedConfig, now time.Time) (*State, string, error) {
	if cur == nil || cur.CA == nil || !validAt(cur.CA.Cert, now) {
		ca, err := NewCA("tidb-backup-guard-ca", cfg.CAValidity, now)
		if err != nil {
			return nil, "", err
		}
		next := &State{CA: ca, RotatedAt: now}
		for _, c := range trusted {
			if validAt(c, now) {
				next.Bundle = next.Bundle.Merge(c)
			}
		}
		next.Bundle = next.Bundle.Merge(ca.Cert)
		if next.Serving, err = newServing(ca, cfg, now); err != nil {
			return nil, "", err
		}
		return next, "created a CA and a serving certificate", nil
	}
	next := *cur
	var reasons []string
	if !now.Before(RenewalTime(cur.CA.Cert)) {
		ca, err := NewCA("tidb-backup-guard-ca", cfg.CAValidity, now)
		if err != nil {
			return nil, "", err
		}
		next.CA, next.Serving, next.RotatedAt = ca, nil, now
		reasons = append(reasons, "rotated the CA")
	}
	if s := next.Serving; s == nil || !SignedBy(s.Cert, next.CA.Cert) || !now.Before(RenewalTime(s.Cert)) || !sameNames(s.Cert, cfg.Names) {
		var err error
		if next.Serving, err = newServing(next.CA, cfg, now); err != nil {
			return nil, "", err
		}
		reasons = append(reasons, "issued a serving certificate")
	}
	next.Bundle = next.Bundle.Merge(next.CA.Cert).Prune(next.CA.Cert, next.RotatedAt, cfg.Overlap, now)
	if !next.Bundle.Equal(cur.Bundle) {
		reasons = append(reasons, "updated the CA bundle")
	}
	if len(reasons) == 0 {
		return cur, "", nil
	}
	return &next, joinReasons(reasons), nil
}

// newServing issues a serving certificate that does not outlive its CA.
func newServing(ca *KeyPair, cfg SelfSignedConfig, now time.Time) (*KeyPair, error) {
	validity := cfg.CertValidity
	if rest := ca.Cert.NotAfter.Sub(now); rest < validity {
		validity = rest
	}
	return NewServing(ca, cfg.Names, validity, now)
}

// sameNames reports whether c covers exactly names.
func sameNames(c *x509.Certificate, names []string) bool {
	var have []string
	have = append(have, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		have = append(have, ip.String())
	}
	want := make([]string, 0, len(names))
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		}
		want = append(want, n)
	}
	slices.Sort(have)
	slices.Sort(want)
	return slices.Equal(have, want)
}

func joinReasons(r []string) string {
	out := r[0]
	for _, s := range r[1:] {
		out += ", " + s
	}
	return out
}
