package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func TestGeneration(t *testing.T) {
	ca, err := NewCA("test-ca", 24*time.Hour, t0)
	require.NoError(t, err)
	assert.True(t, ca.Cert.IsCA)
	assert.Equal(t, t0.Add(24*time.Hour), ca.Cert.NotAfter)
	assert.Equal(t, t0.Add(-time.Minute), ca.Cert.NotBefore, "backdated a minute for clock skew")
	key, ok := ca.Key.(*ecdsa.PrivateKey)
	require.True(t, ok, "ECDSA key")
	assert.Equal(t, elliptic.P256(), key.Curve)

	srv, err := NewServing(ca, []string{"svc", "svc.ns.svc", "127.0.0.1"}, time.Hour, t0)
	require.NoError(t, err)
	assert.Equal(t, []string{"svc", "svc.ns.svc"}, srv.Cert.DNSNames)
	require.Len(t, srv.Cert.IPAddresses, 1)
	assert.True(t, srv.Cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")))
	assert.False(t, srv.Cert.IsCA)
	assert.Contains(t, srv.Cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	assert.True(t, SignedBy(srv.Cert, ca.Cert))
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	_, err = srv.Cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "svc.ns.svc", CurrentTime: t0})
	assert.NoError(t, err)

	_, err = NewServing(ca, nil, time.Hour, t0)
	assert.Error(t, err)

	back, err := ParseKeyPair(srv.CertPEM, srv.KeyPEM)
	require.NoError(t, err)
	assert.True(t, back.Cert.Equal(srv.Cert))
	_, err = ParseKeyPair(srv.CertPEM, ca.KeyPEM)
	assert.ErrorContains(t, err, "does not match")

	// A short lifetime is backdated less, so renewal at two thirds stays in the future.
	short, err := NewCA("short", 4*time.Second, t0)
	require.NoError(t, err)
	assert.Equal(t, t0.Add(-time.Second), short.Cert.NotBefore)
	assert.True(t, RenewalTime(short.Cert).After(t0))
}

// heldSource serves whatever its holder holds.
type heldSource struct{ holder }

func (*heldSource) Start(context.Context) error { return nil }

func TestCheck(t *testing.T) {
	ca, err := NewCA("ca", time.Hour, t0)
	require.NoError(t, err)
	kp, err := NewServing(ca, []string{"svc"}, time.Hour, t0)
	require.NoError(t, err)
	c, err := kp.TLS()
	require.NoError(t, err)
	src := &heldSource{}
	assert.ErrorContains(t, Check(src, t0), "no serving certificate")
	src.set(c)
	assert.NoError(t, Check(src, t0))
	assert.NoError(t, Check(src, t0.Add(time.Hour)))
	assert.ErrorContains(t, Check(src, t0.Add(time.Hour+time.Second)), "expired")
	assert.ErrorContains(t, Check(src, t0.Add(-2*time.Minute)), "not valid before")
}

func TestBundle(t *testing.T) {
	a, _ := NewCA("a", time.Hour, t0)
	b, _ := NewCA("b", 2*time.Hour, t0.Add(30*time.Minute))
	bundle := Bundle(nil).Merge(a.Cert, b.Cert, a.Cert)
	assert.Len(t, bundle, 2, "no duplicates")
	parsed, err := ParseBundle(bundle.PEM())
	require.NoError(t, err)
	assert.True(t, parsed.Equal(bundle))
	empty, err := ParseBundle(nil)
	require.NoError(t, err)
	assert.Empty(t, empty)
	_, err = ParseBundle([]byte("not pem"))
	assert.Error(t, err)

	rotated := t0.Add(30 * time.Minute)
	tests := []struct {
		name string
		now  time.Time
		want Bundle
	}{
		{"both during the overlap", rotated.Add(5 * time.Minute), Bundle{a.Cert, b.Cert}},
		{"old CA pruned after the overlap", rotated.Add(10 * time.Minute), Bundle{b.Cert}},
		{"expired CA pruned at once", t0.Add(61 * time.Minute), Bundle{b.Cert}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			overlap := 10 * time.Minute
			if tc.name == "expired CA pruned at once" {
				overlap = 10 * time.Hour
			}
			assert.True(t, tc.want.Equal(bundle.Prune(b.Cert, rotated, overlap, tc.now)))
		})
	}
}

func TestPlan(t *testing.T) {
	cfg := SelfSignedConfig{Names: []string{"svc.ns.svc"}, CAValidity: 30 * time.Hour, CertValidity: 3 * time.Hour, Overlap: time.Hour}
	fresh, reason, err := Plan(nil, nil, cfg, t0)
	require.NoError(t, err)
	assert.Equal(t, "created a CA and a serving certificate", reason)
	assert.True(t, fresh.Bundle.Equal(Bundle{fresh.CA.Cert}))
	assert.True(t, SignedBy(fresh.Serving.Cert, fresh.CA.Cert))

	t.Run("nothing to do while valid", func(t *testing.T) {
		next, reason, err := Plan(fresh, nil, cfg, t0.Add(time.Hour))
		require.NoError(t, err)
		assert.Empty(t, reason)
		assert.Same(t, fresh, next)
	})
	t.Run("serving certificate renewed at two thirds, same CA", func(t *testing.T) {
		next, reason, err := Plan(fresh, nil, cfg, t0.Add(2*time.Hour))
		require.NoError(t, err)
		assert.Equal(t, "issued a serving certificate", reason)
		assert.True(t, next.CA.Cert.Equal(fresh.CA.Cert))
		assert.False(t, next.Serving.Cert.Equal(fresh.Serving.Cert))
		assert.True(t, next.Bundle.Equal(fresh.Bundle))
	})
	t.Run("new names reissue", func(t *testing.T) {
		c := cfg
		c.Names = []string{"svc.ns.svc", "svc.ns.svc.cluster.local"}
		next, reason, err := Plan(fresh, nil, c, t0.Add(time.Minute))
		require.NoError(t, err)
		assert.Equal(t, "issued a serving certificate", reason)
		assert.ElementsMatch(t, c.Names, next.Serving.Cert.DNSNames)
	})
	var rotated *State
	t.Run("CA rotated at two thirds: both CAs trusted", func(t *testing.T) {
		now := t0.Add(21 * time.Hour)
		var reason string
		rotated, reason, err = Plan(fresh, nil, cfg, now)
		require.NoError(t, err)
		assert.Equal(t, "rotated the CA, issued a serving certificate, updated the CA bundle", reason)
		assert.False(t, rotated.CA.Cert.Equal(fresh.CA.Cert))
		assert.True(t, SignedBy(rotated.Serving.Cert, rotated.CA.Cert))
		assert.True(t, rotated.Bundle.Equal(Bundle{fresh.CA.Cert, rotated.CA.Cert}))
		assert.Equal(t, now, rotated.RotatedAt)
	})
	t.Run("the old CA leaves after the overlap", func(t *testing.T) {
		next, reason, err := Plan(rotated, nil, cfg, rotated.RotatedAt.Add(time.Hour))
		require.NoError(t, err)
		assert.Equal(t, "updated the CA bundle", reason)
		assert.True(t, next.Bundle.Equal(Bundle{rotated.CA.Cert}))
	})
	t.Run("an expired CA is replaced; still-valid trusted CAs stay", func(t *testing.T) {
		other, _ := NewCA("other", 100*time.Hour, t0)
		next, _, err := Plan(fresh, Bundle{other.Cert, fresh.CA.Cert}, cfg, t0.Add(31*time.Hour))
		require.NoError(t, err)
		assert.False(t, next.CA.Cert.Equal(fresh.CA.Cert))
		assert.True(t, next.Bundle.Equal(Bundle{other.Cert, next.CA.Cert}), "the expired CA is dropped, the valid one kept")
	})
	t.Run("a serving certificate never outlives its CA", func(t *testing.T) {
		c := cfg
		c.CertValidity = 30 * time.Hour
		next, _, err := Plan(nil, nil, c, t0)
		require.NoError(t, err)
		assert.False(t, next.Serving.Cert.NotAfter.After(next.CA.Cert.NotAfter))
	})
	assert.Error(t, SelfSignedConfig{Names: []string{"a"}, CAValidity: time.Hour, CertValidity: 2 * time.Hour, Overlap: time.Minute}.Validate())
}

func TestFileSourceReloads(t *testing.T) {
	dir := t.TempDir()
	write := func(kp *KeyPair) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, CertFile), kp.CertPEM, 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(dir, KeyFile), kp.KeyPEM, 0o600))
	}
	ca, _ := NewCA("ca", time.Hour, time.Now())
	first, _ := NewServing(ca, []string{"first"}, time.Hour, time.Now())
	second, _ := NewServing(ca, []string{"second"}, time.Hour, time.Now())

	_, err := NewFileSource(dir, time.Hour, nil, logr.Discard())
	assert.ErrorContains(t, err, CertFile, "missing files stop start-up")

	write(first)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	src, err := NewFileSource(dir, 50*time.Millisecond, m, logr.Discard())
	require.NoError(t, err)
	served := func() string { c, _ := src.GetCertificate(nil); return c.Leaf.DNSNames[0] }
	assert.Equal(t, "first", served())

	ctx := t.Context()
	go func() { _ = src.Start(ctx) }()
	write(second)
	assert.Eventually(t, func() bool { return served() == "second" }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, 2.0, testutil.ToFloat64(m.reloads))
	assert.Equal(t, float64(second.Cert.NotAfter.Unix()), testutil.ToFloat64(m.expiry))

	// A broken pair is counted and the served one kept.
	require.NoError(t, os.WriteFile(filepath.Join(dir, KeyFile), first.KeyPEM, 0o600))
	assert.Eventually(t, func() bool { return testutil.ToFloat64(m.errors) >= 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, "second", served())
}
