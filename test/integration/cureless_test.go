package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/etcdtest"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// Failures that a retry or a resume cannot cure, beside the real
// controller-manager. Each is recorded once and told with its remedy, and nothing is re-run.

// A log-start refused by the storage for an expired token is not retried: the record and
// the Failed condition say to rotate the credentials and start the log backup again.
func TestExpiredCredentialsAreNotRetried(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	op, pd := realCluster(t)
	startWatchingReconciler(t, pd, true, nil)
	op.Script("pitr", testenv.BRCredentialsExpired, testenv.Succeed)
	require.NoError(t, op.Start(t.Context(), richLogBackup(t, "pitr", quickPolicy)))

	eventually(t, op.Namespace, "pitr", 30*time.Second, "given up", gaveUp)
	b := settled(t, op, map[string]int{"pitr": 1})["pitr"]
	assert.Equal(t, 1, op.Runs("pitr"), "not re-run")
	assert.Equal(t, retry.ReasonCredentialsRejected, failedCondition(b)["reason"])
	assert.Contains(t, failedCondition(b)["message"], "rotate the credentials")
	assert.Contains(t, firstRecord(t, b).OriginalReason, "ExpiredToken")
	assert.Equal(t, 1, eventReasons(t, op.Namespace, "pitr")[retry.ReasonRetrySkipped])
}

// A running log backup paused by TiKV because the storage refused its credentials: the
// same verdict as for a command, and no resume. Only the kernel probe can tell: TiKV's pause
// record carries BR's error as protobuf, which TiDB Operator v1.6.4 to v1.6.6 parse as JSON
// (pause_info.go, ParseBackupError), so their record of any TiKV pause says only
// "Log backup paused due to error: error" (seen beside v1.6.6), and without the probe such a
// pause is resumed under the policy like any other.
func TestCredentialPauseIsNotResumed(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	op, pd := realCluster(t)
	startWatchingReconciler(t, pd, true, nil)
	startRunning(t, op, "pitr", pausePolicy)
	require.NoError(t, etcdtest.PauseByError(t.Context(), pd, "pitr", 3, "KV:LogBackup:Io",
		"InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records"))

	eventually(t, op.Namespace, "pitr", 30*time.Second, "given up", gaveUp)
	b := settled(t, op, map[string]int{"pitr": 1})["pitr"]
	assertGaveUpOnPause(t, b, retry.ReasonCredentialsRejected)
	assert.Contains(t, failedCondition(b)["message"], "rotate the credentials")
	assert.Contains(t, firstRecord(t, b).OriginalReason, "InvalidAccessKeyId")
	assert.Zero(t, op.Resumes("pitr"))
	assert.Empty(t, firstRecord(t, b).RealRetryAt, "no resume was attempted")
	assert.Equal(t, 1, eventReasons(t, op.Namespace, "pitr")[retry.ReasonRetrySkipped])
}

// TiDB's advancer pauses a task whose checkpoint lag passed its limit, and pauses it again
// after any resume until the limit is raised: the pause is recorded once, never resumed,
// and one Warning gives the remedy. TiDB Operator's own record of the pause stays.
func TestLagLimitPauseIsRecordedNotResumed(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	for _, probe := range []bool{true, false} {
		t.Run(map[bool]string{true: "kernel probe on", false: "from TiDB Operator's record"}[probe], func(t *testing.T) {
			t.Parallel()
			if !probe && !hasTracker(t) {
				t.Skip("before v1.6.4 TiDB Operator records no pause")
			}
			op, pd := realCluster(t)
			startWatchingReconciler(t, pd, probe, nil)
			startRunning(t, op, "lagging", pausePolicy)
			require.NoError(t, etcdtest.PauseWithMessage(t.Context(), pd, "lagging",
				"the checkpoint lag is too huge (lag 49h0m0s, limit 48h0m0s)"))

			eventually(t, op.Namespace, "lagging", tiDBOperatorNotices, "recorded", gaveUp)
			if hasTracker(t) {
				eventually(t, op.Namespace, "lagging", tiDBOperatorNotices, "TiDB Operator records the pause",
					func(b *unstructured.Unstructured) bool {
						return entryReason(b, "RetryFailed") == "LogBackupErrorPaused"
					})
			}
			b := settled(t, op, map[string]int{"lagging": 1})["lagging"]
			rec := firstRecord(t, b)
			assert.Empty(t, rec.ExpectedRetryAt, "no resume scheduled")
			assert.Contains(t, rec.OriginalReason, "lag is too huge")
			assert.Zero(t, op.Resumes("lagging"))
			assert.Nil(t, failedCondition(b), "no Failed condition of ours: the task can go on once the limit is raised")
			warnings := eventMessages(t, op.Namespace, "lagging", retry.ReasonRetrySkipped)
			require.Len(t, warnings, 1)
			assert.True(t, strings.HasPrefix(warnings[0], "Warning: "), warnings[0])
			assert.Contains(t, warnings[0], "tidb_advancer_check_point_lag_limit")
			assert.Contains(t, warnings[0], "br log resume --task-name lagging")
		})
	}
}

// LogBackupStateQueryFailed (a TiDB Operator after v1.6.6, tidb-operator#6950, written here
// as it would write it) says TiDB Operator could not read PD: it is neither a failure nor a
// missing task, so nothing is done while it stands, even with the probe seeing the task.
// Its next word decides: a LogBackupTaskNotFound for a task that is really gone is recorded
// once, as any.
func TestStateQueryFailedIsWaitedOn(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	op, pd := realCluster(t)
	startWatchingReconciler(t, pd, true, nil)
	startRunning(t, op, "pitr", quickPolicy)
	require.NoError(t, op.WriteOperatorRecord(t.Context(), "pitr", "Failed", "LogBackupStateQueryFailed",
		"failed to query log backup state from PD, will retry for 10m0s"))

	b := settled(t, op, map[string]int{"pitr": 0})["pitr"]
	assert.Equal(t, "LogBackupStateQueryFailed", failedCondition(b)["reason"], "left as TiDB Operator wrote it")
	assert.True(t, episodeClosed(b))
	events := eventReasons(t, op.Namespace, "pitr")
	for _, reason := range []string{retry.ReasonRetryScheduled, retry.ReasonRetrySkipped, retry.ReasonRetryStarted,
		retry.ReasonRecoveredFromKernel, retry.ReasonRetryExhausted} {
		assert.Zero(t, events[reason], "nothing to say: %v", events)
	}

	_, err := pd.Delete(t.Context(), "/tidb/br-stream/info/pitr")
	require.NoError(t, err)
	require.NoError(t, op.WriteOperatorRecord(t.Context(), "pitr", "Failed", "LogBackupTaskNotFound",
		"Log backup task not found in TiKV, the task may have been deleted or cluster state is inconsistent"))
	eventually(t, op.Namespace, "pitr", 30*time.Second, "recorded", gaveUp)
	b = settled(t, op, map[string]int{"pitr": 1})["pitr"]
	assert.Equal(t, "LogBackupTaskNotFound", failedCondition(b)["reason"], "TiDB Operator's words stay")
	assert.Equal(t, 1, eventReasons(t, op.Namespace, "pitr")[retry.ReasonRetrySkipped])
}
