package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/certs"
	"github.com/tidb-backup-guard/tidb-backup-guard/cmd/tidb-backup-guard/app"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testcerts"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

func startSelfSigned(t *testing.T, register bool, edit func(*app.Options)) *testenv.Server {
	t.Helper()
	s, err := env.StartSelfSigned(t.Context(), testLog(t), register, edit)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Stop()) })
	return s
}

func secretName(t *testing.T) string {
	return fmt.Sprintf("webhook-cert-%d", time.Now().UnixNano())
}

func withSecret(name string, more ...func(*app.Options)) func(*app.Options) {
	return func(o *app.Options) {
		o.CertSecretName = name
		for _, m := range more {
			m(o)
		}
	}
}

func getSecret(t *testing.T, name string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	require.NoError(t, env.Client.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, s))
	return s
}

// servedLeaf is the certificate a server presents.
func servedLeaf(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reading what is served
	require.NoError(t, err)
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// configBundles returns the caBundle of every webhook of both configurations.
func configBundles(t *testing.T) [][]byte {
	t.Helper()
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	require.NoError(t, env.Client.Get(context.Background(), client.ObjectKey{Name: testenv.MutatingConfigName}, m))
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	require.NoError(t, env.Client.Get(context.Background(), client.ObjectKey{Name: testenv.ValidatingConfigName}, v))
	var out [][]byte
	for _, w := range m.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	for _, w := range v.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	return out
}

// admitOnce sends a server-side dry-run create of a log Backup through the API server
// and reports whether the webhook defaulted it.
func admitOnce(ctx context.Context) error {
	b, err := testenv.Object(testenv.LogBackupYAML)
	if err != nil {
		return err
	}
	b.SetNamespace("default")
	if err := env.Client.Create(ctx, b, client.DryRunAll); err != nil {
		return err
	}
	if v, _, _ := unstructured.NestedString(b.Object, "spec", "backoffRetryPolicy", "minRetryDuration"); v != "30s" {
		return fmt.Errorf("not defaulted: %v", b.Object["spec"])
	}
	return nil
}

func TestSelfSignedThroughTheAPIServer(t *testing.T) {
	name := secretName(t)
	s := startSelfSigned(t, true, withSecret(name))
	t.Cleanup(func() { _ = testenv.UnregisterWebhooks(context.Background(), env.Client) })
	require.NoError(t, admitOnce(t.Context()))

	sec := getSecret(t, name)
	assert.Equal(t, corev1.SecretTypeTLS, sec.Type)
	for _, k := range []string{"ca.crt", "ca.key", "tls.crt", "tls.key", "ca-bundle.crt"} {
		assert.NotEmpty(t, sec.Data[k], k)
	}
	for _, b := range configBundles(t) {
		assert.Equal(t, sec.Data["ca-bundle.crt"], b, "every webhook trusts the Secret's bundle")
	}
	leaf := servedLeaf(t, s.App.WebhookAddr())
	ca, err := certs.ParseKeyPair(sec.Data["ca.crt"], sec.Data["ca.key"])
	require.NoError(t, err)
	assert.True(t, certs.SignedBy(leaf, ca.Cert))
	assert.Equal(t, "127.0.0.1", leaf.IPAddresses[0].String())

	// The injector owns caBundle and nothing else of the configurations (server-side
	// apply), and the rest of them is as registered.
	want, _ := testenv.WebhookConfigs("", nil)
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	require.NoError(t, env.Client.Get(t.Context(), client.ObjectKey{Name: testenv.MutatingConfigName}, m))
	var owned []string
	for _, mf := range m.ManagedFields {
		if mf.Manager == certs.InjectorFieldManager {
			owned = append(owned, mf.FieldsV1.GetRawString())
		}
	}
	require.Len(t, owned, 1)
	for _, w := range want.Webhooks {
		assert.Contains(t, owned[0], `"k:{\"name\":\"`+w.Name+`\"}":{".":{},"f:clientConfig":{"f:caBundle":{}},"f:name":{}}`)
	}
	for i := range m.Webhooks {
		got := m.Webhooks[i].DeepCopy()
		got.ClientConfig.CABundle, got.ClientConfig.URL = nil, nil
		exp := want.Webhooks[i].DeepCopy()
		exp.ClientConfig.URL = nil
		assert.Equal(t, exp.Name, got.Name)
		assert.Equal(t, exp.Rules, got.Rules)
		assert.Equal(t, exp.MatchConditions, got.MatchConditions)
	}
}

// Rotation under load: CA and serving certificates with lifetimes of seconds rotate
// several times while Backups are admitted in a loop; not one admission fails.
func TestSelfSignedRotationKeepsAdmissionWorking(t *testing.T) {
	name := secretName(t)
	startSelfSigned(t, true, withSecret(name, func(o *app.Options) {
		o.CAValidity, o.CertValidity, o.CAOverlap = 8*time.Second, 4*time.Second, 3*time.Second
		o.CertResync = 300 * time.Millisecond
	}))
	t.Cleanup(func() { _ = testenv.UnregisterWebhooks(context.Background(), env.Client) })
	ctx := t.Context()

	cas, servings := map[string]bool{}, map[string]bool{}
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if err := admitOnce(ctx); err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
		} else {
			ok.Add(1)
		}
		sec := getSecret(t, name)
		cas[string(sec.Data["ca.crt"])] = true
		servings[string(sec.Data["tls.crt"])] = true
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("admitted %d, failed %d, CAs %d, serving certificates %d", ok.Load(), failed.Load(), len(cas), len(servings))
	assert.Zero(t, failed.Load(), "first failure: %v", firstErr.Load())
	assert.Greater(t, ok.Load(), int64(100))
	assert.GreaterOrEqual(t, len(cas), 3, "the CA rotated at least twice")
	assert.GreaterOrEqual(t, len(servings), 5, "the serving certificate was renewed several times")
}

func TestSelfSignedSecretDeletedIsRecreated(t *testing.T) {
	name := secretName(t)
	s := startSelfSigned(t, true, withSecret(name))
	t.Cleanup(func() { _ = testenv.UnregisterWebhooks(context.Background(), env.Client) })
	ctx := t.Context()
	before := getSecret(t, name)
	require.NoError(t, env.Client.Delete(ctx, before))

	var after *corev1.Secret
	require.Eventually(t, func() bool {
		sec := &corev1.Secret{}
		if env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, sec) != nil {
			return false
		}
		after = sec
		return true
	}, 10*time.Second, 20*time.Millisecond)
	assert.NotEqual(t, before.UID, after.UID)
	assert.NotEqual(t, before.Data["ca.crt"], after.Data["ca.crt"], "a new CA")
	// Admission keeps working throughout, and the server ends up on the new CA.
	newCA, err := certs.ParseKeyPair(after.Data["ca.crt"], after.Data["ca.key"])
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		require.NoError(t, admitOnce(ctx))
		return certs.SignedBy(servedLeaf(t, s.App.WebhookAddr()), newCA.Cert)
	}, 15*time.Second, 50*time.Millisecond)
}

// Two instances sharing one Secret agree on one CA and serve certificates it signed.
func TestSelfSignedInstancesConverge(t *testing.T) {
	name := secretName(t)
	a := startSelfSigned(t, true, withSecret(name))
	t.Cleanup(func() { _ = testenv.UnregisterWebhooks(context.Background(), env.Client) })
	b := startSelfSigned(t, false, withSecret(name))

	sec := getSecret(t, name)
	ca, err := certs.ParseKeyPair(sec.Data["ca.crt"], sec.Data["ca.key"])
	require.NoError(t, err)
	for _, s := range []*testenv.Server{a, b} {
		assert.True(t, certs.SignedBy(servedLeaf(t, s.App.WebhookAddr()), ca.Cert))
	}
	bundle, err := certs.ParseBundle(sec.Data["ca-bundle.crt"])
	require.NoError(t, err)
	assert.Len(t, bundle, 1, "one CA, not one per instance")
	require.NoError(t, admitOnce(t.Context()))
}

// cert-manager mode: the server serves the files cert-manager's Secret is mounted as, and
// picks up a renewal (here signed by a new CA, both in the injected bundle) without a
// restart, while the API server keeps calling it.
func TestCertManagerModeReloadsMountedFiles(t *testing.T) {
	ctx := t.Context()
	first, second, mounted := t.TempDir(), t.TempDir(), t.TempDir()
	ca1, err := testcerts.ServingCert(first, time.Hour, "127.0.0.1")
	require.NoError(t, err)
	ca2, err := testcerts.ServingCert(second, time.Hour, "127.0.0.1")
	require.NoError(t, err)
	copyPair := func(from string) {
		for _, f := range []string{"tls.crt", "tls.key"} {
			b, err := os.ReadFile(filepath.Join(from, f))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(mounted, f+".tmp"), b, 0o600))
			require.NoError(t, os.Rename(filepath.Join(mounted, f+".tmp"), filepath.Join(mounted, f)))
		}
	}
	copyPair(first)

	port, err := testenv.FreePort()
	require.NoError(t, err)
	s, err := env.RunApp(ctx, testLog(t), func(o *app.Options) {
		o.Components = []string{app.ComponentWebhook}
		o.CertMode, o.CertDir, o.CertPollInterval = app.CertModeCertManager, mounted, 200*time.Millisecond
		o.WebhookHost, o.WebhookPort = "127.0.0.1", port
	})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Stop()) })
	// What cert-manager's CA injector would write: the CAs of the current and the next
	// certificate.
	require.NoError(t, testenv.RegisterWebhooks(ctx, env.Client, fmt.Sprintf("https://127.0.0.1:%d", port), append(ca1, ca2...)))
	t.Cleanup(func() { _ = testenv.UnregisterWebhooks(context.Background(), env.Client) })
	require.NoError(t, env.WaitForWebhooks(ctx))

	before := servedLeaf(t, s.App.WebhookAddr())
	copyPair(second)
	require.Eventually(t, func() bool { return !servedLeaf(t, s.App.WebhookAddr()).Equal(before) }, 10*time.Second, 50*time.Millisecond,
		"the renewed certificate was not picked up")
	require.NoError(t, admitOnce(ctx))
}
