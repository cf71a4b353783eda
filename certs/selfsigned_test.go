package certs

import (
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The rule that keeps a rotation safe on every replica: a certificate signed by a new CA
// is served only after both webhook configurations have trusted that CA for the settle
// time; a renewal under the CA already in use switches at once.
func TestServeSwitchesOnlyToTrustedCAs(t *testing.T) {
	cfg := SelfSignedConfig{Names: []string{"svc"}, CAValidity: 30 * time.Hour, CertValidity: 3 * time.Hour, Overlap: time.Hour}
	old, _, err := Plan(nil, nil, cfg, t0)
	require.NoError(t, err)
	rotated, _, err := Plan(old, nil, cfg, t0.Add(21*time.Hour))
	require.NoError(t, err)
	renewed, _, err := Plan(old, nil, cfg, t0.Add(2*time.Hour))
	require.NoError(t, err)

	newSource := func() *SelfSignedSource {
		s := &SelfSignedSource{opts: SelfSignedOptions{Settle: 5 * time.Second, Log: logr.Discard()}, trustedSince: map[string]time.Time{}}
		c, err := old.Serving.TLS()
		require.NoError(t, err)
		s.set(c)
		return s
	}
	served := func(s *SelfSignedSource) *KeyPair {
		c := s.current()
		switch {
		case c.Leaf.Equal(old.Serving.Cert):
			return old.Serving
		case c.Leaf.Equal(rotated.Serving.Cert):
			return rotated.Serving
		case c.Leaf.Equal(renewed.Serving.Cert):
			return renewed.Serving
		}
		return nil
	}
	now := t0.Add(21 * time.Hour)

	t.Run("new CA not yet trusted: keep serving the old certificate", func(t *testing.T) {
		s := newSource()
		trusted := Bundle{old.CA.Cert}
		s.noteTrusted(trusted, now)
		assert.Positive(t, s.serve(rotated, trusted, 4, now))
		assert.Same(t, old.Serving, served(s))
	})
	t.Run("new CA trusted but not settled: wait out the settle time", func(t *testing.T) {
		s := newSource()
		s.noteTrusted(rotated.Bundle, now)
		assert.Equal(t, 3*time.Second, s.serve(rotated, rotated.Bundle, 4, now.Add(2*time.Second)))
		assert.Same(t, old.Serving, served(s))
		assert.Zero(t, s.serve(rotated, rotated.Bundle, 4, now.Add(5*time.Second)))
		assert.Same(t, rotated.Serving, served(s))
	})
	t.Run("renewal under the CA in use: switch at once", func(t *testing.T) {
		s := newSource()
		s.noteTrusted(renewed.Bundle, now)
		assert.Zero(t, s.serve(renewed, renewed.Bundle, 4, now))
		assert.Same(t, renewed.Serving, served(s))
	})
	t.Run("nothing served yet, or no webhook registered: serve at once", func(t *testing.T) {
		s := &SelfSignedSource{opts: SelfSignedOptions{Settle: 5 * time.Second, Log: logr.Discard()}, trustedSince: map[string]time.Time{}}
		assert.Zero(t, s.serve(rotated, nil, 4, now))
		assert.Same(t, rotated.Serving, served(s))
		s = newSource()
		assert.Zero(t, s.serve(rotated, nil, 0, now))
		assert.Same(t, rotated.Serving, served(s))
	})
	t.Run("a CA that left the configurations starts its settle time again", func(t *testing.T) {
		s := newSource()
		s.noteTrusted(rotated.Bundle, now)
		s.noteTrusted(Bundle{old.CA.Cert}, now.Add(time.Second))
		s.noteTrusted(rotated.Bundle, now.Add(10*time.Second))
		assert.Positive(t, s.serve(rotated, rotated.Bundle, 4, now.Add(11*time.Second)))
	})
}
