package integration

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/cmd/tidb-backup-guard/app"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/etcdtest"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// The resume hand-off against TiDB Operator's own writes (reconciler/pause.go, "The resume
// hand-off and why it converges"). TiDB Operator's error-pause sync decides on the copy in
// its cache and writes through a status updater that re-reads the cache and applies the
// condition it decided on (log-start RetryFailed, which sets status.phase RetryFailed). A
// sync that read the Backup before our hand-off and writes after it overwrites Paused, and
// TiDB Operator never runs log-resume. Here the proxy in front of the real
// controller-manager holds each such write until our hand-off has landed, so that the race
// goes against us every time, for as many hand-offs as the story says.

// holdStaleErrorPauseWrites holds TiDB Operator's error-pause writes of name that were
// decided on a copy holding our pause record, each until a hand-off is in place; limit
// bounds how many (0: all).
func holdStaleErrorPauseWrites(t *testing.T, op *testenv.Cluster, name string, limit int) *testenv.Hold {
	t.Helper()
	h := tidbOperator(t).Proxy.AddHold(&testenv.Hold{
		Namespace: op.Namespace, Name: name,
		// Its error-pause write (log-start RetryFailed) on a copy with our record, before any
		// log-resume: not the write that follows a log-resume Job it created.
		Match: func(obj map[string]any) bool {
			u := &unstructured.Unstructured{Object: obj}
			records, _, _ := unstructured.NestedSlice(obj, "status", "backoffRetryStatus")
			return backupPhase(u) == "RetryFailed" && entryReason(u, "RetryFailed") == "LogBackupErrorPaused" && len(records) > 0 &&
				commandPhase(u, "log-resume") == ""
		},
		// Until a hand-off is in place: a write sent while it is (TiDB Operator's retry after
		// the conflict, re-applied on the hand-off's copy) is the overwrite, and goes on.
		Release: func(cur *unstructured.Unstructured) bool { return backupPhase(cur) == "Paused" },
		MaxHold: 3 * time.Minute,
		Limit:   limit,
		// Its informer then has our hand-off before it retries, and its overwrite before it
		// syncs again: it derives log-start, not log-resume from a cache that says Paused.
		Settle: 30 * time.Second,
	})
	t.Cleanup(h.Stop)
	return h
}

// startServerHandingOffAfterTiDBOperator starts the story's server through a proxy of its
// own that holds each of its hand-offs (an update writing status.phase Paused) until one
// of TiDB Operator's stale writes is held, as long as theirs holds any more: however slow
// TiDB Operator is, its write was decided before the hand-off. The two holds go round by
// round, not by counts, since either side's write may conflict and be sent again.
func startServerHandingOffAfterTiDBOperator(t *testing.T, op *testenv.Cluster, pd *clientv3.Client, probe bool, theirs *testenv.Hold) {
	t.Helper()
	proxy, err := testenv.StartAPIProxy(env.Config, env.Client)
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	ours := proxy.AddHold(&testenv.Hold{
		Namespace: op.Namespace, Name: "pitr",
		Match:   func(obj map[string]any) bool { return backupPhase(&unstructured.Unstructured{Object: obj}) == "Paused" },
		Release: func(*unstructured.Unstructured) bool { return theirs.Waiting() > 0 || theirs.Spent() },
		MaxHold: time.Minute,
	})
	t.Cleanup(ours.Stop)
	startWatchingReconciler(t, pd, probe, nil, app.WithRestConfig(proxy.RestConfig()))
}

// pausedWhileTiDBOperatorWatches runs name, pauses its task by an error and waits until TiDB
// Operator records the pause: its error-pause sync then runs whenever the Backup changes,
// which is when a hand-off can lose.
func pausedWhileTiDBOperatorWatches(t *testing.T, op *testenv.Cluster, name string) {
	t.Helper()
	startRunning(t, op, name, pausePolicy)
	require.NoError(t, etcdtest.PauseByError(t.Context(), op.PD, name, 4, "KV:LogBackup:Io", "disk full on /var/lib/tikv"))
	eventually(t, op.Namespace, name, tiDBOperatorNotices, "TiDB Operator records the pause", func(b *unstructured.Unstructured) bool {
		return entryReason(b, "RetryFailed") == "LogBackupErrorPaused"
	})
}

// assertHeldUntilHandOffs checks that each held write waited for a hand-off: it was
// decided before one and landed after it.
func assertHeldUntilHandOffs(t *testing.T, h *testenv.Hold, want int) {
	t.Helper()
	held := h.Held()
	assert.Len(t, held, want, "held:\n%s", lines(held))
	for _, w := range held {
		assert.True(t, w.Released, "a held write went on only after a hand-off: %s", w)
	}
}

// Today's failure, made certain: TiDB Operator overwrites the first four hand-offs (the
// most the server wrote before, after which it said "handed off" while nothing ran). The
// next one runs log-resume, the pause is resumed once, and the Backup comes to rest.
func TestHandOffOverwrittenByTiDBOperatorIsHandedOffAgain(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	if !canResume(t) || !hasTracker(t) {
		t.Skip("only a TiDB Operator with the log-backup tracker (v1.6.4+) writes over a hand-off")
	}
	const overwritten = 4
	for _, probe := range []bool{true, false} {
		name := map[bool]string{true: "kernel probe on", false: "from TiDB Operator's record"}[probe]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			op, pd := realCluster(t)
			op.Advance = true
			pausedWhileTiDBOperatorWatches(t, op, "pitr")
			hold := holdStaleErrorPauseWrites(t, op, "pitr", overwritten)
			startServerHandingOffAfterTiDBOperator(t, op, pd, probe, hold)

			b := resumedOnce(t, op, "pitr", probe)
			assertHeldUntilHandOffs(t, hold, overwritten)
			assert.Equal(t, 1, op.Resumes("pitr"), "TiDB Operator ran log-resume once")
			rec := firstRecord(t, b)
			assert.Contains(t, rec.RetryReason, "log-resume failed: the log backup task was paused by an error")

			b = settled(t, op, map[string]int{"pitr": 1})["pitr"]
			assert.True(t, episodeClosed(b))
			assert.Equal(t, "Running", backupPhase(b))
			events := eventReasons(t, op.Namespace, "pitr")
			assert.Equal(t, overwritten+1, events[retry.ReasonRetryStarted], "every lost hand-off written again once: %v", events)
			assert.Equal(t, 1, events[retry.ReasonRetryScheduled], "events: %v", events)
			assert.Zero(t, events[retry.ReasonRetrySkipped], "events: %v", events)
		})
	}
}

// TiDB Operator overwrites every hand-off: after MaxHandOffs the episode gives up, saying
// what TiDB Operator did and what to do; nothing says "handed off" while nothing runs.
func TestHandOffOverwrittenEveryTimeGivesUp(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	if !canResume(t) || !hasTracker(t) {
		t.Skip("only a TiDB Operator with the log-backup tracker (v1.6.4+) writes over a hand-off")
	}
	op, pd := realCluster(t)
	op.Advance = true
	pausedWhileTiDBOperatorWatches(t, op, "pitr")
	hold := holdStaleErrorPauseWrites(t, op, "pitr", 0)
	startServerHandingOffAfterTiDBOperator(t, op, pd, true, hold)

	eventually(t, op.Namespace, "pitr", 3*time.Minute, "given up", gaveUp)
	hold.Stop()
	assertHeldUntilHandOffs(t, hold, retry.MaxHandOffs)
	b := settled(t, op, map[string]int{"pitr": 1})["pitr"]
	assert.True(t, gaveUp(b))
	assertGaveUpOnPause(t, b, retry.ReasonHandOffOverwritten)
	msg, _ := failedCondition(b)["message"].(string)
	assert.Contains(t, msg, "TiDB Operator overwrote all 6 hand-offs")
	assert.Contains(t, msg, "set spec.logSubcommand to log-pause, then back to log-start")
	assert.Zero(t, op.Resumes("pitr"))
	err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: op.Namespace, Name: "backup-pitr-log-resume"}, &batchv1.Job{})
	assert.True(t, apierrors.IsNotFound(err), "no log-resume Job: %v", err)
	events := eventReasons(t, op.Namespace, "pitr")
	assert.Equal(t, retry.MaxHandOffs, events[retry.ReasonRetryStarted], "events: %v", events)
	assert.Equal(t, 1, events[retry.ReasonRetrySkipped], "events: %v", events)
}
