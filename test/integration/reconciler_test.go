package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	clientretry "k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

func startReconciler(t *testing.T) *testenv.Server {
	t.Helper()
	s, err := env.StartReconciler(t.Context(), testLog(t), scoped(t, nil))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Stop()) })
	return s
}

// operator prepares a story beside TiDB Operator's real controller-manager (realCluster)
// and returns the Cluster that plays the pod, the Job controller and the GC there.
func operator(t *testing.T) *testenv.Cluster {
	t.Helper()
	op, _ := realCluster(t)
	return op
}

// runOperator runs op for the rest of the test. A story with an operator must end with
// settled: a test that passes without showing that its Backups came to rest fails.
func runOperator(t *testing.T, op *testenv.Cluster) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { op.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		settledMu.Lock()
		defer settledMu.Unlock()
		if !settledNamespaces[op.Namespace] && !t.Failed() {
			t.Errorf("the story in namespace %s ended without settled(): nothing showed that its Backups stopped changing", op.Namespace)
		}
	})
}

var (
	settledMu         sync.Mutex
	settledNamespaces = map[string]bool{}
)

// fixtureBackup is the fully populated log Backup of the webhook fixtures, without the
// metadata the API server owns on create.
func fixtureBackup(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "webhook", "testdata", "create-log-backup.json"))
	require.NoError(t, err)
	var review struct {
		Request struct {
			Object map[string]any `json:"object"`
		} `json:"request"`
	}
	require.NoError(t, json.Unmarshal(raw, &review))
	u := &unstructured.Unstructured{Object: review.Request.Object}
	// finalizers too: they would keep the test namespace from going away.
	for _, f := range []string{"uid", "creationTimestamp", "managedFields", "resourceVersion", "finalizers"} {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
	// A field from a future CRD version: the webhook's own tests keep it; TiDB Operator's
	// released CRD, which these suites install, prunes it on the way in. And empty
	// optional strings: TiDB Operator's own typed writes drop them (omitempty).
	unstructured.RemoveNestedField(u.Object, "spec", "someFutureField")
	for k, v := range u.Object["spec"].(map[string]any) {
		if v == "" {
			delete(u.Object["spec"].(map[string]any), k)
		}
	}
	return u
}

// richLogBackup is fixtureBackup with a policy and no command entries yet, for the real
// controller-manager of realCluster: labelled for its selector, its TidbCluster in its
// own namespace.
func richLogBackup(t *testing.T, name string, policy map[string]any) *unstructured.Unstructured {
	t.Helper()
	u := fixtureBackup(t)
	unstructured.RemoveNestedField(u.Object, "status", "logSubCommandStatuses")
	unstructured.RemoveNestedField(u.Object, "spec", "br", "clusterNamespace")
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[realOperatorLabel] = "real"
	u.SetLabels(labels)
	u.SetName(name)
	require.NoError(t, unstructured.SetNestedMap(u.Object, policy, "spec", "backoffRetryPolicy"))
	return u
}

var quickPolicy = map[string]any{"minRetryDuration": "1s", "maxRetryTimes": int64(5), "retryTimeout": "1m"}

func TestLogStartFailsTwiceThenSucceeds(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	startReconciler(t)
	op := operator(t)
	ctx := t.Context()
	sent := richLogBackup(t, "pitr", quickPolicy)
	sent.SetNamespace(op.Namespace)
	want := roundTrip(t, sent.DeepCopy().Object)
	op.Script("pitr", testenv.BRError, testenv.BRError, testenv.Succeed)
	require.NoError(t, op.Start(ctx, sent))
	want = keptOnCreate(want, roundTrip(t, sent.Object))

	b := eventually(t, op.Namespace, "pitr", 30*time.Second, "log-start recovers",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })

	recs := recordsOf(t, b)
	require.Len(t, recs, 2, "one record per failed attempt")
	for i, r := range recs {
		assert.Equal(t, int64(i+1), r.RetryNum)
		delay := ts(t, r.ExpectedRetryAt).Sub(ts(t, r.DetectFailedAt))
		assert.Equal(t, time.Duration(1<<i)*time.Second, delay, "retry %d waits min << (n-1)", r.RetryNum)
		assert.False(t, ts(t, r.RealRetryAt).Before(ts(t, r.ExpectedRetryAt)), "retry %d started early", r.RetryNum)
		assert.Contains(t, r.OriginalReason, "failed to connect to PD")
		assert.Contains(t, r.RetryReason, "log-start failed")
	}
	assert.Equal(t, 3, op.Runs("pitr"))
	require.Eventually(t, func() bool {
		ev := eventReasons(t, op.Namespace, "pitr")
		return ev["RetryScheduled"] == 2 && ev["RetryStarted"] == 2 && ev["RetrySucceeded"] == 1
	}, 10*time.Second, 50*time.Millisecond, "events: %v", eventReasons(t, op.Namespace, "pitr"))

	// Every field the test sent is still there, unchanged: spec, metadata, and the
	// status fields nobody here owns.
	assertContains(t, "", withoutOwned(want), roundTrip(t, b.Object))
	settled(t, op, map[string]int{"pitr": 2})
}

// keptOnCreate is want without the fields the API server did not store on create: those
// the installed CRD does not know (TiDB Operator v1.6.0's has no spec.logSubcommand, say)
// are pruned before anything of ours runs.
func keptOnCreate(want, created map[string]any) map[string]any {
	out := map[string]any{}
	for k, w := range want {
		c, ok := created[k]
		if !ok {
			continue
		}
		wm, wIsMap := w.(map[string]any)
		cm, cIsMap := c.(map[string]any)
		if wIsMap && cIsMap {
			out[k] = keptOnCreate(wm, cm)
			continue
		}
		out[k] = w
	}
	return out
}

// withoutOwned drops what the operator and the reconciler legitimately change.
func withoutOwned(obj map[string]any) map[string]any {
	u := &unstructured.Unstructured{Object: obj}
	unstructured.RemoveNestedField(u.Object, "status", "phase")
	unstructured.RemoveNestedField(u.Object, "status", "conditions")
	unstructured.RemoveNestedField(u.Object, "status", "commitTs")
	return u.Object
}

func TestRetriesExhausted(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	startReconciler(t)
	op := operator(t)
	policy := map[string]any{"minRetryDuration": "1s", "maxRetryTimes": int64(2), "retryTimeout": "1m"}
	op.Script("pitr", testenv.BRError, testenv.BRError, testenv.BRError, testenv.Succeed)
	require.NoError(t, op.Start(t.Context(), richLogBackup(t, "pitr", policy)))

	b := eventually(t, op.Namespace, "pitr", 30*time.Second, "gives up", gaveUp)
	recs := recordsOf(t, b)
	require.Len(t, recs, 3)
	assert.Empty(t, recs[2].ExpectedRetryAt, "no retry follows the last record")
	assert.Equal(t, "Failed", entryPhase(b))
	assert.Equal(t, retry.ReasonRetryLimitExceeded, entryFailedReason(b))
	phase, _, _ := unstructured.NestedString(b.Object, "status", "phase")
	assert.Equal(t, "Failed", phase)
	// It stays given up: no fourth run, nothing more written.
	settled(t, op, map[string]int{"pitr": 3})
	assert.Equal(t, 3, op.Runs("pitr"))
	assert.Equal(t, 1, eventReasons(t, op.Namespace, "pitr")["RetryExhausted"])
}

func TestRetryTimeout(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	startReconciler(t)
	op := operator(t)
	// Retry 1 starts 1s after the first failure; retry 2 would start at least 1s+2s
	// after it, past the 2s timeout.
	policy := map[string]any{"minRetryDuration": "1s", "maxRetryTimes": int64(5), "retryTimeout": "2s"}
	op.Script("pitr", testenv.BRError, testenv.BRError, testenv.Succeed)
	require.NoError(t, op.Start(t.Context(), richLogBackup(t, "pitr", policy)))

	b := eventually(t, op.Namespace, "pitr", 30*time.Second, "gives up on the timeout", gaveUp)
	assert.Len(t, recordsOf(t, b), 2)
	assert.Equal(t, retry.ReasonRetryTimeout, entryFailedReason(b))
	assert.Equal(t, 2, op.Runs("pitr"))
	settled(t, op, map[string]int{"pitr": 2})
}

func TestPodDeathIsRetried(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	startReconciler(t)
	op := operator(t)
	op.Script("pitr", testenv.PodDeath, testenv.Succeed)
	require.NoError(t, op.Start(t.Context(), richLogBackup(t, "pitr", quickPolicy)))

	b := eventually(t, op.Namespace, "pitr", 30*time.Second, "recovers from a pod death",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
	recs := recordsOf(t, b)
	require.Len(t, recs, 1)
	assert.Contains(t, recs[0].RetryReason, "Job backup-pitr-log-start failed while the command was Running")
	assert.Contains(t, recs[0].OriginalReason, "BackoffLimitExceeded")
	assert.Equal(t, 2, op.Runs("pitr"))
	settled(t, op, map[string]int{"pitr": 1})
}

func TestRestartMidBackoff(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	s := startReconciler(t)
	op := operator(t)
	policy := map[string]any{"minRetryDuration": "5s", "maxRetryTimes": int64(5), "retryTimeout": "1m"}
	op.Script("pitr", testenv.BRError, testenv.Succeed)
	require.NoError(t, op.Start(t.Context(), richLogBackup(t, "pitr", policy)))

	b := eventually(t, op.Namespace, "pitr", 20*time.Second, "the failure is recorded",
		func(b *unstructured.Unstructured) bool { return len(recordsOf(t, b)) == 1 })
	before := firstRecord(t, b)
	require.NoError(t, s.Stop())

	restarted, err := env.StartReconciler(t.Context(), testLog(t), scoped(t, nil))
	require.NoError(t, err)
	*s = *restarted // the cleanup stops the running one

	// Mid-backoff, the restarted reconciler adds nothing and changes nothing.
	time.Sleep(time.Second)
	recs := recordsOf(t, fetch(t, op.Namespace, "pitr"))
	require.Len(t, recs, 1)
	assert.Equal(t, before, recs[0])

	b = eventually(t, op.Namespace, "pitr", 30*time.Second, "the retry still happens",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
	recs = recordsOf(t, b)
	require.Len(t, recs, 1)
	assert.Equal(t, before.ExpectedRetryAt, recs[0].ExpectedRetryAt)
	assert.False(t, ts(t, recs[0].RealRetryAt).Before(ts(t, recs[0].ExpectedRetryAt)))
	settled(t, op, map[string]int{"pitr": 1})
}

// A writer updating the same Backup's status throughout (as TiDB Operator and the
// backup-manager do) never makes a record disappear or repeat.
func TestConcurrentWriter(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	startReconciler(t)
	op := operator(t)
	op.Script("pitr", testenv.BRError, testenv.BRError, testenv.Succeed)
	require.NoError(t, op.Start(t.Context(), richLogBackup(t, "pitr", quickPolicy)))

	// The writer stops between writes, never mid-request: a cancelled request may still
	// land, and the test must know the last value written.
	ctx := t.Context()
	stop := make(chan struct{})
	writes := make(chan int64, 1)
	go func() {
		var n int64
		for {
			select {
			case <-stop:
				writes <- n
				return
			default:
			}
			err := clientretry.RetryOnConflict(clientretry.DefaultRetry, func() error {
				b := testenv.Empty(testenv.BackupGVK)
				if err := env.Client.Get(ctx, client.ObjectKey{Namespace: op.Namespace, Name: "pitr"}, b); err != nil {
					return err
				}
				// A status field of TiDB Operator's that nobody else here writes (the
				// real CRD prunes fields it does not know).
				_ = unstructured.SetNestedField(b.Object, n+1, "status", "backupSize")
				return env.Client.Update(ctx, b)
			})
			if err == nil {
				n++
			}
			// Not every 5ms: TiDB Operator's own status writes retry a conflict only a
			// few times (client-go's clientretry.DefaultRetry) and then drop the write.
			time.Sleep(50 * time.Millisecond)
		}
	}()
	b := eventually(t, op.Namespace, "pitr", 40*time.Second, "recovers despite the writer",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
	close(stop)
	n := <-writes
	assert.Greater(t, n, int64(10), "the writer kept writing")

	recs := recordsOf(t, b)
	require.Len(t, recs, 2)
	assert.Equal(t, int64(1), recs[0].RetryNum)
	assert.Equal(t, int64(2), recs[1].RetryNum)
	final := fetch(t, op.Namespace, "pitr")
	got, _, _ := unstructured.NestedInt64(final.Object, "status", "backupSize")
	assert.Equal(t, n, got, "the writer's last write survived")
	assert.Equal(t, recs, recordsOf(t, final))
	settled(t, op, map[string]int{"pitr": 2})
}

// liveOldPod creates a running pod labelled as the old log-start Job's, but not controlled
// by it (so the garbage collector leaves it): it holds a retry until it terminates.
func liveOldPod(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	ctx := t.Context()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels: map[string]string{"batch.kubernetes.io/job-name": testenv.JobName("pitr")}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "backup", Image: "pingcap/br"}}},
	}
	require.NoError(t, env.Client.Create(ctx, pod))
	pod.Status.Phase = corev1.PodRunning
	require.NoError(t, env.Client.Status().Update(ctx, pod))
	return pod
}

// A live pod of the old Job blocks the retry until it terminates: a re-run beside it
// would collide on BR's lock.
func TestLiveOldPodBlocksTheRetry(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	startReconciler(t)
	op := operator(t)
	ctx := t.Context()
	op.Script("pitr", testenv.BRError, testenv.Succeed)
	require.NoError(t, op.Start(ctx, richLogBackup(t, "pitr", quickPolicy)))

	// A pod of the old Job that no longer belongs to it, still running.
	pod := liveOldPod(t, op.Namespace, "backup-pitr-log-start-orphan")

	eventually(t, op.Namespace, "pitr", 20*time.Second, "the failure is recorded",
		func(b *unstructured.Unstructured) bool { return len(recordsOf(t, b)) == 1 })
	time.Sleep(3 * time.Second) // well past the 1s delay
	b := fetch(t, op.Namespace, "pitr")
	assert.Empty(t, firstRecord(t, b).RealRetryAt, "the retry started beside a live pod")
	assert.Equal(t, 1, op.Runs("pitr"))

	pod.Status.Phase = corev1.PodFailed
	require.NoError(t, env.Client.Status().Update(ctx, pod))
	eventually(t, op.Namespace, "pitr", 20*time.Second, "retries once the pod terminated",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
	assert.Equal(t, 2, op.Runs("pitr"))
	settled(t, op, map[string]int{"pitr": 1})
}
