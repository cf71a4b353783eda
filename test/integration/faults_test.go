package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/cmd/tidb-backup-guard/app"
	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// The API server goes away while a Backup waits for its retry (the retry falls due
// during the outage) and comes back: the retry happens once, with one record.
func TestAPIServerOutageWhileWaiting(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	proxy, err := testenv.StartProxy(env.Config)
	require.NoError(t, err)
	t.Cleanup(proxy.Close)
	s, err := env.RunApp(t.Context(), testLog(t), scoped(t, func(o *app.Options) {
		o.Components = []string{app.ComponentReconciler}
	}), app.WithRestConfig(proxy.Config(env.Config)))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Stop()) })

	op := operator(t) // the operator talks to the API server directly: only we lose it
	policy := map[string]any{"minRetryDuration": "3s", "maxRetryTimes": int64(5), "retryTimeout": "5m"}
	op.Script("pitr", testenv.BRError, testenv.Succeed)
	require.NoError(t, op.Start(t.Context(), richLogBackup(t, "pitr", policy)))
	b := eventually(t, op.Namespace, "pitr", 20*time.Second, "the failure is recorded",
		func(b *unstructured.Unstructured) bool { return len(recordsOf(t, b)) == 1 })
	before := firstRecord(t, b)

	require.NoError(t, proxy.Down())
	time.Sleep(6 * time.Second) // the retry falls due while the API server is away
	assert.Empty(t, recordsOf(t, fetch(t, op.Namespace, "pitr"))[0].RealRetryAt, "nothing can start without the API server")
	require.NoError(t, proxy.Up())

	b = eventually(t, op.Namespace, "pitr", 60*time.Second, "the retry happens after the outage",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
	recs := recordsOf(t, b)
	require.Len(t, recs, 1, "no record lost or duplicated")
	assert.Equal(t, before.ExpectedRetryAt, recs[0].ExpectedRetryAt)
	assert.Equal(t, 2, op.Runs("pitr"))
	require.Eventually(t, func() bool { return eventReasons(t, op.Namespace, "pitr")["RetrySucceeded"] == 1 }, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, 1, eventReasons(t, op.Namespace, "pitr")["RetryStarted"])
	settled(t, op, map[string]int{"pitr": 1})
}

// The reconciler stops after recording the failure and deleting the old Job, before the
// re-run (held there by a pod of the old Job that is still running), and a new one takes
// over: one record, one re-run.
func TestReconcilerKilledMidRetry(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	s := startReconciler(t)
	op := operator(t)
	ctx := t.Context()
	op.Script("pitr", testenv.BRError, testenv.Succeed)
	require.NoError(t, op.Start(ctx, richLogBackup(t, "pitr", quickPolicy)))
	pod := liveOldPod(t, op.Namespace, "backup-pitr-log-start-old")

	eventually(t, op.Namespace, "pitr", 20*time.Second, "the failure is recorded",
		func(b *unstructured.Unstructured) bool { return len(recordsOf(t, b)) == 1 })
	require.Eventually(t, func() bool {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: op.Namespace, Name: testenv.JobName("pitr")}, &batchv1.Job{})
		return apierrors.IsNotFound(err)
	}, 20*time.Second, 20*time.Millisecond, "the old Job is deleted")
	require.NoError(t, s.Stop()) // mid-retry: recorded, Job gone, not handed back

	b := fetch(t, op.Namespace, "pitr")
	require.Empty(t, firstRecord(t, b).RealRetryAt)
	pod.Status.Phase = corev1.PodFailed
	require.NoError(t, env.Client.Status().Update(ctx, pod))

	restarted, err := env.StartReconciler(ctx, testLog(t), scoped(t, nil))
	require.NoError(t, err)
	*s = *restarted
	b = eventually(t, op.Namespace, "pitr", 30*time.Second, "the new reconciler finishes the retry",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
	assert.Len(t, recordsOf(t, b), 1)
	assert.Equal(t, 2, op.Runs("pitr"))
	settled(t, op, map[string]int{"pitr": 1})
}

// The webhook is down and the mutating webhook is failurePolicy Ignore (the chart's
// default): a log Backup is created with no policy at all. The reconciler still retries
// it, with the configured log defaults.
func TestWebhookDownRetriesWithDefaults(t *testing.T) {
	ctx := t.Context()
	port, err := testenv.FreePort() // nothing listens there
	require.NoError(t, err)
	m, _ := testenv.WebhookConfigs(fmt.Sprintf("https://127.0.0.1:%d", port), nil)
	for i := range m.Webhooks {
		m.Webhooks[i].FailurePolicy = ptr.To(admissionregistrationv1.Ignore)
	}
	require.NoError(t, env.Client.Create(ctx, m))
	t.Cleanup(func() { _ = testenv.UnregisterWebhooks(context.Background(), env.Client) })

	s, err := env.StartReconciler(ctx, testLog(t), func(o *app.Options) {
		o.MinRetryDuration, o.MaxRetries, o.RetryTimeout = "2s", 3, "10m" // the configured defaults
	})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Stop()) })
	op := operator(t)
	op.Script("pitr", testenv.BRError, testenv.Succeed)
	backup := richLogBackup(t, "pitr", nil)
	unstructured.RemoveNestedField(backup.Object, "spec", defaults.FieldPolicy)
	require.NoError(t, op.Start(ctx, backup))
	// The mutating webhook was skipped: no policy, or, once TiDB Operator has written the
	// Backup (its typed writes send the policy it decoded), the CRD's snapshot defaults.
	p, found, _ := unstructured.NestedMap(fetch(t, op.Namespace, "pitr").Object, "spec", defaults.FieldPolicy)
	if found {
		require.Equal(t, map[string]any{"minRetryDuration": "300s", "maxRetryTimes": int64(2), "retryTimeout": "30m"}, p)
	}

	b := eventually(t, op.Namespace, "pitr", 30*time.Second, "retried with the default policy",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
	recs := recordsOf(t, b)
	require.Len(t, recs, 1)
	assert.Equal(t, 2*time.Second, ts(t, recs[0].ExpectedRetryAt).Sub(ts(t, recs[0].DetectFailedAt)), "the configured minRetryDuration")
	p, _, _ = unstructured.NestedMap(b.Object, "spec", defaults.FieldPolicy)
	assert.Equal(t, map[string]any{"minRetryDuration": "300s", "maxRetryTimes": int64(2), "retryTimeout": "30m"}, p,
		"TiDB Operator's writes filled in the CRD's snapshot defaults, which the reconciler reads as unset")
	settled(t, op, map[string]int{"pitr": 1})
}

// The reconciler records failures with a merge patch carrying the resourceVersion it
// decided on (reconciler.recordOnCached). That is only safe if the API server treats that
// resourceVersion as a precondition for this CRD: checked here.
func TestMergePatchWithAResourceVersionIsConditional(t *testing.T) {
	ctx := t.Context()
	b := richLogBackup(t, "pitr", quickPolicy)
	b.SetLabels(nil) // not one for TiDB Operator, which would write it too
	b.SetNamespace(namespace(t))
	require.NoError(t, env.Client.Create(ctx, b))
	stale := b.GetResourceVersion()
	require.NoError(t, env.Client.Patch(ctx, b, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"touched":"yes"}}}`))))
	require.NotEqual(t, stale, b.GetResourceVersion())

	patch := func(rv string) error {
		target := testenv.Empty(testenv.BackupGVK)
		target.SetNamespace(b.GetNamespace())
		target.SetName(b.GetName())
		return env.Client.Patch(ctx, target, client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"resourceVersion":"`+rv+`"},"status":{"backoffRetryStatus":[{"retryNum":1}]}}`)))
	}
	err := patch(stale)
	assert.True(t, apierrors.IsConflict(err), "a stale resourceVersion must conflict: %v", err)
	assert.Empty(t, recordsOf(t, fetch(t, b.GetNamespace(), "pitr")), "nothing was written")
	require.NoError(t, patch(b.GetResourceVersion()))
	got := fetch(t, b.GetNamespace(), "pitr")
	assert.Len(t, recordsOf(t, got), 1)
	assert.Equal(t, "yes", got.GetLabels()["touched"], "the rest of the object is kept")
}
