package kernel

import (
	"crypto/x509"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/grpclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/tidb-backup-guard/tidb-backup-guard/test/etcdtest"
)

// TestMain silences grpc's global logger: the TLS tests fail handshakes on purpose, and
// the probe reports its own errors.
func TestMain(m *testing.M) {
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
	os.Exit(m.Run())
}

func target(backup string) Target {
	return Target{Backup: types.NamespacedName{Namespace: "ns", Name: backup}, Cluster: "basic", Namespace: "ns", Task: backup, Attempt: "1@now"}
}

func newProber(t *testing.T, cfg Config) *Prober {
	t.Helper()
	if cfg.Log.GetSink() == nil {
		cfg.Log = testr.New(t)
	}
	p, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// Tasks as BR writes them, read back through the probe.
func TestProbeReadsTasksAsBRWritesThem(t *testing.T) {
	e, cli := etcdtest.StartT(t, etcdtest.Options{})
	require.NoError(t, etcdtest.PutTask(t.Context(), cli, "healthy", 449532234876551170))
	require.NoError(t, etcdtest.PutTask(t.Context(), cli, "broken", 100))
	require.NoError(t, etcdtest.PauseByError(t.Context(), cli, "broken", 4, "KV:LogBackup:Io", "disk full on /var/lib/tikv"))
	require.NoError(t, etcdtest.PutTask(t.Context(), cli, "held", 200))
	require.NoError(t, etcdtest.PauseManually(t.Context(), cli, "held", "maintenance window"))
	// A task whose name extends another's: its errors must not leak into "broken".
	require.NoError(t, etcdtest.PutTask(t.Context(), cli, "broken2", 300))
	require.NoError(t, etcdtest.PauseByError(t.Context(), cli, "broken2", 9, "KV:Other", "not mine"))

	p := newProber(t, Config{EndpointTemplate: e.Endpoint})
	tests := []struct {
		task string
		want Task
	}{
		{"healthy", Task{Name: "healthy", Exists: true, StartTS: 449532234876551170, CheckpointTS: 449532234876551170}},
		{"broken", Task{Name: "broken", Exists: true, StartTS: 100, CheckpointTS: 100, Paused: true, PausedByError: true,
			PauseMessage: "store 4: KV:LogBackup:Io: disk full on /var/lib/tikv",
			LastErrors:   []StoreError{{StoreID: 4, Code: "KV:LogBackup:Io", Message: "disk full on /var/lib/tikv"}}}},
		{"held", Task{Name: "held", Exists: true, StartTS: 200, CheckpointTS: 200, Paused: true, PauseMessage: "maintenance window"}},
		{"absent", Task{Name: "absent"}},
	}
	for _, tt := range tests {
		t.Run(tt.task, func(t *testing.T) {
			r := p.Probe(t.Context(), target(tt.task))
			require.NoError(t, r.Err)
			assert.Equal(t, e.Endpoint, r.Endpoint)
			got := *r.Task
			for i := range got.LastErrors {
				assert.False(t, got.LastErrors[i].HappenAt.IsZero(), "happen_at is read")
				got.LastErrors[i].HappenAt = time.Time{}
			}
			assert.Equal(t, tt.want, got)
		})
	}

	r := p.Probe(t.Context(), Target{Backup: types.NamespacedName{Namespace: "ns", Name: "x"}, Task: "x"})
	assert.EqualError(t, r.Err, "spec.br.cluster is not set, so PD cannot be located")
	assert.Equal(t, 1, p.Clients(), "one client per endpoint, shared by the Backups")
}

func TestProbeWhenPDIsDown(t *testing.T) {
	e, cli := etcdtest.StartT(t, etcdtest.Options{})
	require.NoError(t, etcdtest.PutTask(t.Context(), cli, "pitr", 5))

	p := newProber(t, Config{EndpointTemplate: e.Endpoint, Timeout: 500 * time.Millisecond})
	require.NoError(t, p.Probe(t.Context(), target("pitr")).Err)

	require.NoError(t, e.Stop())
	r := p.Probe(t.Context(), target("pitr"))
	require.Error(t, r.Err)
	assert.Nil(t, r.Task)
	assert.Contains(t, r.Err.Error(), "read task pitr from "+e.Endpoint)

	// The pooled client reconnects once PD is back.
	require.NoError(t, e.Restart())
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := p.Probe(t.Context(), target("pitr"))
		if assert.NoError(c, r.Err) {
			assert.Equal(c, uint64(5), r.Task.StartTS)
		}
	}, 20*time.Second, 200*time.Millisecond)

	// Nothing listens here at all.
	p2 := newProber(t, Config{EndpointTemplate: "http://127.0.0.1:1", Timeout: 300 * time.Millisecond})
	assert.Error(t, p2.Probe(t.Context(), target("pitr")).Err)
}

func tlsSecret(e *etcdtest.Etcd, name string, withClientCert bool) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Data: map[string][]byte{"ca.crt": e.CA.PEM}}
	if withClientCert {
		s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey] = e.ClientCert, e.ClientKey
	}
	return s
}

func TestProbeWithClientTLS(t *testing.T) {
	e, cli := etcdtest.StartT(t, etcdtest.Options{TLS: true})
	require.NoError(t, etcdtest.PutTask(t.Context(), cli, "pitr", 77))

	other, err := etcdtest.Start(etcdtest.Options{TLS: true}) // a CA the server does not trust
	require.NoError(t, err)
	defer func() { _ = other.Close() }()
	foreign := tlsSecret(other, "foreign-client", true)
	foreign.Data["ca.crt"] = e.CA.PEM // trusts the server, but presents a certificate of another CA

	secrets := fake.NewClientBuilder().WithObjects(
		tlsSecret(e, "basic-cluster-client-secret", true),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "nocert-cluster-client-secret"}, Data: tlsSecret(e, "", false).Data},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "badca-cluster-client-secret"}, Data: map[string][]byte{"ca.crt": []byte("not PEM")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "foreign-cluster-client-secret"}, Data: foreign.Data},
	).Build()
	p := newProber(t, Config{EndpointTemplate: e.Endpoint, TLSSecretTemplate: "{cluster}-cluster-client-secret",
		Secrets: secrets, Timeout: time.Second})

	r := p.Probe(t.Context(), target("pitr"))
	require.NoError(t, r.Err)
	assert.Equal(t, uint64(77), r.Task.StartTS)

	for cluster, want := range map[string]string{
		"missing": `client TLS Secret ns/missing-cluster-client-secret: secrets "missing-cluster-client-secret" not found`,
		"badca":   "client TLS Secret ns/badca-cluster-client-secret: ca.crt holds no PEM certificate",
		"nocert":  "read task pitr from " + e.Endpoint, // the server requires a client certificate
		"foreign": "read task pitr from " + e.Endpoint, // the server does not trust its issuer
	} {
		tg := target("pitr")
		tg.Cluster = cluster
		r := p.Probe(t.Context(), tg)
		if assert.Error(t, r.Err, cluster) {
			assert.True(t, strings.HasPrefix(r.Err.Error(), want), "%s: %v", cluster, r.Err)
		}
	}

	// A rotated Secret gets a new client, made with the new material.
	require.NoError(t, p.Probe(t.Context(), target("pitr")).Err)
	before := p.clientFor(t, e.Endpoint, "ns/basic-cluster-client-secret")
	s := &corev1.Secret{}
	require.NoError(t, secrets.Get(t.Context(), client.ObjectKey{Namespace: "ns", Name: "basic-cluster-client-secret"}, s))
	s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey], err = e.CA.Issue(x509.ExtKeyUsageClientAuth, time.Hour, "rotated")
	require.NoError(t, err)
	require.NoError(t, secrets.Update(t.Context(), s))
	require.NoError(t, p.Probe(t.Context(), target("pitr")).Err)
	assert.NotSame(t, before, p.clientFor(t, e.Endpoint, "ns/basic-cluster-client-secret"))
}

// clientFor is the pooled client of an endpoint and Secret.
func (p *Prober) clientFor(t *testing.T, endpoint, secret string) any {
	t.Helper()
	p.pool.mu.Lock()
	defer p.pool.mu.Unlock()
	pc, ok := p.pool.clients[endpoint+"\x00"+secret]
	require.True(t, ok, "no client for %s with %s", endpoint, secret)
	return pc.cli
}

func TestLookupRunsInTheBackgroundAndCaches(t *testing.T) {
	e, cli := etcdtest.StartT(t, etcdtest.Options{})
	require.NoError(t, etcdtest.PutTask(t.Context(), cli, "pitr", 1))

	var mu sync.Mutex
	notified := map[types.NamespacedName]int{}
	clk := clocktesting.NewFakeClock(time.Now())
	var probes int
	p := newProber(t, Config{EndpointTemplate: e.Endpoint, CacheTTL: 10 * time.Second, Clock: clk,
		Notify:  func(n types.NamespacedName) { mu.Lock(); notified[n]++; mu.Unlock() },
		Observe: func(Result) { mu.Lock(); probes++; mu.Unlock() }})

	a := target("pitr")
	b := a
	b.Backup.Name = "other-backup-same-task"
	_, ok := p.Lookup(a)
	assert.False(t, ok, "the first lookup starts a probe and does not wait for it")
	_, _ = p.Lookup(b) // joins the running probe, or finds its result
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return notified[a.Backup] == 1 }, 10*time.Second, 10*time.Millisecond)

	r, ok := p.Lookup(a)
	require.True(t, ok)
	require.NoError(t, r.Err)
	assert.Equal(t, uint64(1), r.Task.StartTS)
	mu.Lock()
	assert.Equal(t, 1, probes, "one probe per task and attempt while the result is fresh")
	mu.Unlock()

	// Another attempt (a later retry) never reuses it.
	next := a
	next.Attempt = "2@later"
	_, ok = p.Lookup(next)
	assert.False(t, ok, "a new attempt gets a new probe")
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return notified[a.Backup] == 2 }, 10*time.Second, 10*time.Millisecond)

	// The cached result ends with the TTL.
	require.NoError(t, etcdtest.DeleteTask(t.Context(), cli, "pitr"))
	r, ok = p.Lookup(a)
	require.True(t, ok)
	assert.True(t, r.Task.Exists, "still the cached result")
	clk.SetTime(clk.Now().Add(10 * time.Second))
	_, ok = p.Lookup(a)
	assert.False(t, ok)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return notified[a.Backup] == 3 }, 10*time.Second, 10*time.Millisecond)
	r, ok = p.Lookup(a)
	require.True(t, ok)
	assert.False(t, r.Task.Exists)

	// The client stays while a Backup uses it and closes with the last.
	assert.Equal(t, 1, p.Clients())
	p.Release(a.Backup)
	assert.Equal(t, 1, p.Clients(), "the second Backup still uses it")
	p.Release(b.Backup)
	assert.Equal(t, 0, p.Clients())
	p.Release(types.NamespacedName{Namespace: "ns", Name: "never-seen"})

	p.Close()
	r, ok = p.Lookup(target("after-close"))
	assert.True(t, ok)
	assert.EqualError(t, r.Err, "the kernel probe is shut down")
	assert.Equal(t, 0, p.Clients())
}

func TestEndpointTemplate(t *testing.T) {
	p := newProber(t, Config{})
	assert.Equal(t, "http://basic-pd.tidb:2379", p.Endpoint(Target{Cluster: "basic", Namespace: "tidb"}))
	_, err := New(Config{EndpointTemplate: "https://{cluster}-pd:2379", TLSSecretTemplate: "x"})
	assert.EqualError(t, err, "a TLS Secret template needs a Secrets reader")
	_, err = New(Config{EndpointTemplate: "tcp://x"})
	assert.ErrorContains(t, err, "the scheme must be http or https")
}
