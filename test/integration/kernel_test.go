package integration

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/cmd/tidb-backup-guard/app"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/etcdtest"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// startKernelReconciler runs the reconciler with the kernel probe reading PD at endpoint.
func startKernelReconciler(t *testing.T, endpoint, tlsSecret string) {
	t.Helper()
	s, err := env.StartReconciler(t.Context(), testLog(t), scoped(t, func(o *app.Options) {
		o.KernelProbe = app.KernelProbePDEtcd
		o.KernelPDEndpoint = endpoint
		o.KernelTLSSecret = tlsSecret
		o.KernelProbeTimeout = time.Second
	}))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Stop()) })
}

func TestKernelStateDecidesTheRetry(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	// One PD, read by TiDB Operator's tracker and by our kernel probe alike.
	op, cli := realCluster(t)
	startKernelReconciler(t, cli.Endpoints()[0], "")
	ctx := t.Context()
	const startTS = 449532234876551170

	// BR registered the task, then its pod died before it could report success.
	require.NoError(t, etcdtest.PutTask(ctx, cli, "registered", startTS))
	registered := richLogBackup(t, "registered", quickPolicy)
	registered.SetNamespace(op.Namespace)
	want := roundTrip(t, registered.DeepCopy().Object)
	op.Script("registered", testenv.PodDeath)
	// The task exists but TiKV paused it on an error; BR's report of the failure says less.
	require.NoError(t, etcdtest.PutTask(ctx, cli, "paused", 100))
	require.NoError(t, etcdtest.PauseByError(ctx, cli, "paused", 4, "KV:LogBackup:Io", "disk full on /var/lib/tikv"))
	// Its re-run then meets the task: BR says so, and that is not retried.
	op.Script("paused", testenv.BRError, testenv.BRTaskExists)
	// The pod died before BR registered anything.
	op.Script("absent", testenv.PodDeath, testenv.Succeed)
	require.NoError(t, op.Start(ctx, registered))
	want = keptOnCreate(want, roundTrip(t, registered.Object))
	require.NoError(t, op.Start(ctx, richLogBackup(t, "paused", quickPolicy)))
	require.NoError(t, op.Start(ctx, richLogBackup(t, "absent", quickPolicy)))

	t.Run("task registered: recovered, not re-run", func(t *testing.T) {
		b := eventually(t, op.Namespace, "registered", 30*time.Second, "recovered from the kernel state",
			func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
		commitTs, _, _ := unstructured.NestedString(b.Object, "status", "commitTs")
		assert.Equal(t, strconv.FormatUint(startTS, 10), commitTs, "commitTs is the task's start ts")
		assert.Equal(t, 1, op.Runs("registered"), "log-start was not run again")
		recs := recordsOf(t, b)
		require.Len(t, recs, 1)
		assert.NotEmpty(t, recs[0].RealRetryAt)
		assert.Contains(t, recs[0].RetryReason, "recovered from the kernel state: task registered (start ts 449532234876551170) exists and runs")
		assert.Contains(t, recs[0].OriginalReason, "BackoffLimitExceeded", "what the Job said stays")
		require.Eventually(t, func() bool { return eventReasons(t, op.Namespace, "registered")["RecoveredFromKernel"] == 1 },
			10*time.Second, 50*time.Millisecond, "events: %v", eventReasons(t, op.Namespace, "registered"))
		assertContains(t, "", withoutOwned(want), roundTrip(t, b.Object))
	})

	t.Run("task paused by an error: the kernel's reason is recorded and the retry goes ahead", func(t *testing.T) {
		b := eventually(t, op.Namespace, "paused", 30*time.Second, "the re-run meets the task and is not retried", gaveUp)
		assert.Equal(t, 2, op.Runs("paused"), "log-start ran again")
		recs := recordsOf(t, b)
		require.Len(t, recs, 2)
		r := recs[0]
		assert.NotEmpty(t, r.RealRetryAt)
		assert.Equal(t, "kernel: store 4: KV:LogBackup:Io: disk full on /var/lib/tikv",
			r.OriginalReason)
		assert.Contains(t, r.RetryReason, "kernel: task paused (start ts 100) is paused by an error")
		assert.Equal(t, retry.ReasonNotRetryable, entryFailedReason(b))
	})

	t.Run("task absent: the retry goes ahead", func(t *testing.T) {
		r := retriedOnce(t, op, "absent")
		assert.Contains(t, r.RetryReason, "kernel: task absent does not exist")
		assert.Contains(t, r.OriginalReason, "BackoffLimitExceeded")
	})
	settled(t, op, map[string]int{"registered": 1, "paused": 2, "absent": 1})
}

// retriedOnce waits until a Backup's log-start succeeded on its second run and returns
// the one record of the failed first run.
func retriedOnce(t *testing.T, op *testenv.Cluster, name string) record {
	t.Helper()
	b := eventually(t, op.Namespace, name, 30*time.Second, "retried and succeeded",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
	assert.Equal(t, 2, op.Runs(name), "log-start ran again")
	recs := recordsOf(t, b)
	require.Len(t, recs, 1)
	assert.NotEmpty(t, recs[0].RealRetryAt)
	return recs[0]
}

func TestKernelProbeFallsBackWhenPDIsDown(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	e, cli := etcdtest.StartT(t, etcdtest.Options{})
	require.NoError(t, etcdtest.PutTask(t.Context(), cli, "pitr", 7))
	require.NoError(t, e.Stop()) // PD is unreachable to us: the task cannot be seen
	startKernelReconciler(t, e.Endpoint, "")
	op := operator(t) // TiDB Operator reaches its own PD
	op.Script("pitr", testenv.PodDeath, testenv.Succeed)
	require.NoError(t, op.Start(t.Context(), richLogBackup(t, "pitr", quickPolicy)))

	r := retriedOnce(t, op, "pitr")
	assert.Contains(t, r.RetryReason, "the kernel state could not be read (read task pitr from "+e.Endpoint)
	assert.Contains(t, r.RetryReason, "so the retry went ahead without it")
	settled(t, op, map[string]int{"pitr": 1})
}

func TestKernelProbeWithClientTLS(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	e, cli := etcdtest.StartT(t, etcdtest.Options{TLS: true})
	require.NoError(t, etcdtest.PutTask(t.Context(), cli, "pitr", 42))
	op := operator(t)
	// TiDB Operator's tracker reads PD without TLS here: the same task in its PD.
	require.NoError(t, etcdtest.PutTask(t.Context(), op.PD, "pitr", 42))
	// The client certificate lives in a Secret named after the cluster, as TiDB Operator
	// names its client Secrets; the reconciler reads it from the API server.
	require.NoError(t, env.Client.Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: op.Namespace, Name: "basic-cluster-client-secret"},
		Data:       map[string][]byte{"ca.crt": e.CA.PEM, corev1.TLSCertKey: e.ClientCert, corev1.TLSPrivateKeyKey: e.ClientKey},
	}))
	startKernelReconciler(t, e.Endpoint, "{cluster}-cluster-client-secret")
	op.Script("pitr", testenv.PodDeath)
	require.NoError(t, op.Start(t.Context(), richLogBackup(t, "pitr", quickPolicy)))

	b := eventually(t, op.Namespace, "pitr", 30*time.Second, "recovered over TLS",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
	commitTs, _, _ := unstructured.NestedString(b.Object, "status", "commitTs")
	assert.Equal(t, "42", commitTs)
	assert.Equal(t, 1, op.Runs("pitr"))
	settled(t, op, map[string]int{"pitr": 1})
}

// A PD that accepts connections and never answers holds a probe for its whole timeout;
// meanwhile, with a single reconcile worker, another Backup's failure is still handled.
func TestKernelProbeNeverBlocksOtherBackups(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		var held []net.Conn // accepted and never answered, until the test ends
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	s, err := env.StartReconciler(t.Context(), testLog(t), scoped(t, func(o *app.Options) {
		o.KernelProbe = app.KernelProbePDEtcd
		o.KernelPDEndpoint = "http://" + ln.Addr().String()
		o.KernelProbeTimeout = 8 * time.Second
		o.MaxConcurrentReconciles = 1
	}))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Stop()) })
	op := operator(t)
	ctx := t.Context()

	op.Script("stuck", testenv.PodDeath, testenv.Succeed)
	require.NoError(t, op.Start(ctx, richLogBackup(t, "stuck", quickPolicy)))
	// Its retry is due once the old Job is gone; from then on it waits for the probe.
	require.Eventually(t, func() bool {
		b := fetch(t, op.Namespace, "stuck")
		recs := recordsOf(t, b)
		return len(recs) == 1 && !jobExists(t, op.Namespace, "stuck")
	}, 30*time.Second, 20*time.Millisecond, "the old Job was not cleaned up")

	op.Script("other", testenv.BRError, testenv.Succeed)
	require.NoError(t, op.Start(ctx, richLogBackup(t, "other", quickPolicy)))
	other := eventually(t, op.Namespace, "other", 30*time.Second, "the other Backup's failure is recorded",
		func(b *unstructured.Unstructured) bool { return len(recordsOf(t, b)) == 1 })

	r := retriedOnce(t, op, "stuck")
	assert.Contains(t, r.RetryReason, "the kernel state could not be read")
	assert.Contains(t, r.RetryReason, "context deadline exceeded")
	assert.True(t, ts(t, firstRecord(t, other).DetectFailedAt).Before(ts(t, r.RealRetryAt)),
		"the other Backup was handled while the probe held the first one: %s vs %s", firstRecord(t, other).DetectFailedAt, r.RealRetryAt)
	settled(t, op, map[string]int{"stuck": 1, "other": 1})
}

func jobExists(t *testing.T, ns, backup string) bool {
	t.Helper()
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: testenv.JobName(backup)}, &batchv1.Job{})
	if apierrors.IsNotFound(err) {
		return false
	}
	require.NoError(t, err)
	return true
}
