package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/cmd/tidb-backup-guard/app"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/etcdtest"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// Running log backups whose task TiKV paused on an error, beside TiDB Operator's
// real controller-manager, with PD's etcd holding the keys as BR and TiKV write them. The
// Cluster plays the log-resume pods (BR deletes the pause key; the backup-manager writes
// the outcome) and the log backup advancer (a task that is not paused gets its global
// checkpoint moved to now every second).

// pausePolicy: resumes 2 s apart at first, at most two.
var pausePolicy = map[string]any{"minRetryDuration": "2s", "maxRetryTimes": int64(2), "retryTimeout": "10m"}

// startWatchingReconciler runs the reconciler with short watch and probe intervals; with
// probe, its kernel probe reads pd.
func startWatchingReconciler(t *testing.T, pd *clientv3.Client, probe bool, edit func(*app.Options), hooks ...app.Hook) {
	t.Helper()
	s, err := env.RunApp(t.Context(), testLog(t), scoped(t, func(o *app.Options) {
		o.Components = []string{app.ComponentReconciler}
		o.WatchInterval = time.Second
		if probe {
			o.KernelProbe = app.KernelProbePDEtcd
			o.KernelPDEndpoint = pd.Endpoints()[0]
			o.KernelProbeTimeout = time.Second
			o.KernelProbeCacheTTL = 500 * time.Millisecond
		}
		if edit != nil {
			edit(o)
		}
	}), hooks...)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Stop()) })
}

// startRunning creates a log Backup whose log-start succeeds and waits until it runs.
func startRunning(t *testing.T, op *testenv.Cluster, name string, policy map[string]any) {
	t.Helper()
	op.Script(name, testenv.Succeed)
	require.NoError(t, op.Start(t.Context(), richLogBackup(t, name, policy)))
	eventually(t, op.Namespace, name, 60*time.Second, "log-start succeeds", func(b *unstructured.Unstructured) bool {
		commitTs, _, _ := unstructured.NestedString(b.Object, "status", "commitTs")
		return entryPhase(b) == "Complete" && commitTs != ""
	})
}

// runsAgain: the pause episode is closed and the Backup says the log backup runs.
func runsAgain(b *unstructured.Unstructured) bool {
	return episodeClosed(b) && len(b.Object) > 0 && backupPhase(b) == "Running" && commandPhase(b, "log-resume") == "Complete"
}

// canResume reports a TiDB Operator that can run log-resume: its Backup CRD has
// spec.logSubcommand (v1.6.1 and later; the server's --resume-hand-off=auto reads the same).
func canResume(t *testing.T) bool {
	t.Helper()
	crd := &unstructured.Unstructured{}
	crd.SetAPIVersion("apiextensions.k8s.io/v1")
	crd.SetKind("CustomResourceDefinition")
	require.NoError(t, env.Client.Get(t.Context(), client.ObjectKey{Name: "backups.pingcap.com"}, crd))
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		if _, found, _ := unstructured.NestedMap(v.(map[string]any), "schema", "openAPIV3Schema", "properties", "spec", "properties", "logSubcommand"); found {
			return true
		}
	}
	return false
}

func TestErrorPausedLogBackupIsResumed(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	for _, probe := range []bool{true, false} {
		name := map[bool]string{true: "kernel probe on", false: "from TiDB Operator's record"}[probe]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if !probe && !hasTracker(t) {
				t.Skip("TiDB Operator before v1.6.4 records no error pause; only the kernel probe sees one (README)")
			}
			op, pd := realCluster(t)
			op.Advance = true
			startWatchingReconciler(t, pd, probe, nil)
			startRunning(t, op, "pitr", pausePolicy)

			require.NoError(t, etcdtest.PauseByError(t.Context(), pd, "pitr", 4, "KV:LogBackup:Io", "disk full on /var/lib/tikv"))
			if !canResume(t) {
				recordedNotResumed(t, op, pd)
				return
			}
			b := resumedOnce(t, op, "pitr", probe)
			rec := firstRecord(t, b)
			assert.Contains(t, rec.RetryReason, "log-resume failed: the log backup task was paused by an error")
			if probe {
				assert.Contains(t, rec.OriginalReason, "store 4: KV:LogBackup:Io: disk full on /var/lib/tikv", "BR's error, from PD")
			} else {
				assert.Contains(t, rec.OriginalReason, "LogBackupErrorPaused", "TiDB Operator's record")
			}
			assert.Equal(t, 1, op.Resumes("pitr"), "TiDB Operator ran log-resume once")
			resp, err := pd.Get(t.Context(), "/tidb/br-stream/pause/pitr")
			require.NoError(t, err)
			assert.Zero(t, resp.Count, "the task runs (BR deleted the pause key)")

			backups := settled(t, op, map[string]int{"pitr": 1})
			b = backups["pitr"]
			assert.True(t, episodeClosed(b))
			assert.Equal(t, "Running", backupPhase(b))
			events := eventReasons(t, op.Namespace, "pitr")
			assert.Equal(t, 1, events[retry.ReasonRetryScheduled], "events: %v", events)
			// The closing write is RetrySucceeded, or RecoveredFromKernel when it also sets
			// back TiDB Operator's stale record (README); with the probe, a second stale record
			// is put back once more.
			closing := events[retry.ReasonRetrySucceeded] + events[retry.ReasonRecoveredFromKernel]
			if probe {
				assert.Contains(t, []int{1, 2}, closing, "events: %v", events)
			} else {
				assert.Equal(t, 1, closing, "events: %v", events)
			}
			assert.GreaterOrEqual(t, events[retry.ReasonRetryStarted], 1, "events: %v", events)
			assert.LessOrEqual(t, events[retry.ReasonRetryStarted], retry.MaxHandOffs, "hand-offs are bounded: %v", events)
		})
	}
}

// resumedOnce waits until the pause of name was resumed by its first retry and the
// Backup runs again, past TiDB Operator's stale window, and returns it.
func resumedOnce(t *testing.T, op *testenv.Cluster, name string, probe bool) *unstructured.Unstructured {
	t.Helper()
	// TiDB Operator reads PD once a minute, and its stale record after the resume is
	// set back only once that reading expired (about 90 s).
	timeout := 4 * time.Minute
	b := eventually(t, op.Namespace, name, timeout, "resumed, running again", func(b *unstructured.Unstructured) bool {
		return len(recordsOf(t, b)) == 1 && recordsOf(t, b)[0].RealRetryAt != "" && runsAgain(b)
	})
	if probe {
		// TiDB Operator's tracker reuses a PD reading for a minute, so after the resume
		// it may mark the running backup RetryFailed/LogBackupErrorPaused once more from
		// the old reading; the reconciler puts that back after its cooldown (90 s).
		// Seen in two runs of 2026-11-29: the story must be judged past that window.
		resumed := time.Now()
		b = eventually(t, op.Namespace, name, timeout, "running past TiDB Operator's stale window", func(b *unstructured.Unstructured) bool {
			return time.Since(resumed) > 100*time.Second && len(recordsOf(t, b)) == 1 && runsAgain(b)
		})
	}
	return b
}

// assertGaveUpOnPause checks our verdict on a running log backup: the log-start entry's
// Failed condition with our reason, and the entry and status.phase Failed, unless TiDB
// Operator's tracker (v1.6.4+), which keeps writing its own record while the task stays
// paused, wrote RetryFailed over them (a write it had decided before ours; writing ours
// again would be a fight).
func assertGaveUpOnPause(t *testing.T, b *unstructured.Unstructured, reason string) {
	t.Helper()
	assert.True(t, gaveUp(b))
	assert.Equal(t, reason, failedCondition(b)["reason"])
	if entryPhase(b) == "RetryFailed" {
		assert.Equal(t, "LogBackupErrorPaused", entryReason(b, "RetryFailed"), "only TiDB Operator's record replaces ours")
		assert.Equal(t, "RetryFailed", backupPhase(b))
		return
	}
	assert.Equal(t, "Failed", entryPhase(b))
	assert.Equal(t, "Failed", backupPhase(b))
}

// recordedNotResumed: beside a TiDB Operator that cannot run log-resume (v1.6.0), the pause
// of "pitr" is recorded once and alerted on, and nothing else is written; once someone
// resumes the task by hand, the episode ends.
func recordedNotResumed(t *testing.T, op *testenv.Cluster, pd *clientv3.Client) {
	t.Helper()
	b := eventually(t, op.Namespace, "pitr", 30*time.Second, "recorded, not resumed", gaveUp)
	rec := recordsOf(t, b)
	require.Len(t, rec, 1)
	assert.Empty(t, rec[0].ExpectedRetryAt)
	assert.Contains(t, rec[0].OriginalReason, "disk full on /var/lib/tikv")
	assert.Equal(t, "Complete", entryPhase(b), "TiDB Operator's entry untouched")
	events := eventReasons(t, op.Namespace, "pitr")
	assert.Equal(t, 1, events[retry.ReasonRetrySkipped], "events: %v", events)
	assert.Zero(t, op.Resumes("pitr"))
	require.NoError(t, etcdtest.ResumeTask(t.Context(), pd, "pitr")) // br log resume, by hand
	eventually(t, op.Namespace, "pitr", 30*time.Second, "the episode ends", episodeClosed)
	settled(t, op, map[string]int{"pitr": 1})
	assert.Equal(t, 1, eventReasons(t, op.Namespace, "pitr")[retry.ReasonRetrySucceeded])
}

func TestPausedAgainAfterEachResumeExhaustsTheRetries(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	if !canResume(t) {
		t.Skip("this TiDB Operator cannot run log-resume: pauses are recorded, not resumed (TestErrorPausedLogBackupIsResumed)")
	}
	op, pd := realCluster(t)
	op.Advance = true
	startWatchingReconciler(t, pd, true, nil)
	startRunning(t, op, "full", pausePolicy)
	// The storage stays full: each resume is followed by the next pause, and the
	// checkpoint cannot move in between.
	op.ScriptResume("full", testenv.ResumedThenPausedAgain, testenv.ResumedThenPausedAgain, testenv.ResumedThenPausedAgain)
	require.NoError(t, etcdtest.PauseByError(t.Context(), pd, "full", 4, "KV:LogBackup:Io", "disk full on /var/lib/tikv"))

	eventually(t, op.Namespace, "full", 2*time.Minute, "the retries are spent", gaveUp)
	b := settled(t, op, map[string]int{"full": 3})["full"]
	recs := recordsOf(t, b)
	for i, r := range recs {
		assert.Equal(t, int64(i+1), r.RetryNum)
		assert.Contains(t, r.OriginalReason, "disk full")
	}
	assert.NotEmpty(t, recs[0].RealRetryAt)
	assert.NotEmpty(t, recs[1].RealRetryAt)
	assert.Empty(t, recs[2].ExpectedRetryAt, "no retry after the last")
	assert.Equal(t, 2, op.Resumes("full"), "two resumes (maxRetryTimes 2)")
	assertGaveUpOnPause(t, b, retry.ReasonRetryLimitExceeded)
	assert.Contains(t, failedCondition(b)["message"], "gave up after 2 retries")
	events := eventReasons(t, op.Namespace, "full")
	assert.Equal(t, 2, events[retry.ReasonRetryScheduled], "events: %v", events)
	assert.Equal(t, 1, events[retry.ReasonRetryExhausted], "events: %v", events)
	assert.Zero(t, events[retry.ReasonRetrySucceeded], "events: %v", events)
}

func TestGCPassingTheCheckpointGivesUpWithoutAResume(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	if !canResume(t) {
		t.Skip("this TiDB Operator cannot run log-resume: pauses are recorded, not resumed (TestErrorPausedLogBackupIsResumed)")
	}
	op, pd := realCluster(t)
	startWatchingReconciler(t, pd, true, nil)
	slow := map[string]any{"minRetryDuration": "8s", "maxRetryTimes": int64(2), "retryTimeout": "10m"}
	startRunning(t, op, "gap", slow)
	checkpoint := time.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
	require.NoError(t, etcdtest.PutGlobalCheckpoint(t.Context(), pd, "gap", kernel.TSO(checkpoint)))
	require.NoError(t, etcdtest.PauseByError(t.Context(), pd, "gap", 1, "KV:LogBackup:Io", "s3: access denied"))
	eventually(t, op.Namespace, "gap", 30*time.Second, "the pause is recorded", func(b *unstructured.Unstructured) bool {
		return len(recordsOf(t, b)) == 1
	})
	// While the resume waits, GC moves past the checkpoint (the pause's safe point expired).
	require.NoError(t, etcdtest.SetGCSafePoint(t.Context(), pd, kernel.TSO(checkpoint.Add(time.Minute))))

	eventually(t, op.Namespace, "gap", 60*time.Second, "given up: the gap cannot be closed", gaveUp)
	b := settled(t, op, map[string]int{"gap": 1})["gap"]
	assert.Empty(t, firstRecord(t, b).RealRetryAt, "no resume was attempted")
	assert.Zero(t, op.Resumes("gap"))
	assertGaveUpOnPause(t, b, retry.ReasonLogGapUnrecoverable)
	msg, _ := failedCondition(b)["message"].(string)
	assert.Contains(t, msg, "PITR window now has a gap from the task's checkpoint to now")
	assert.Contains(t, msg, "stop this log backup (spec.logSubcommand: log-stop), take a full backup, and start a new log backup")
	assert.Contains(t, msg, checkpoint.UTC().Format(time.RFC3339)[:16], "the checkpoint time is named")
	assert.Equal(t, 1, eventReasons(t, op.Namespace, "gap")[retry.ReasonRetrySkipped])
}

func TestManualPauseIsLeftAlone(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	op, pd := realCluster(t)
	metrics := metricsAddress(t)
	startWatchingReconciler(t, pd, true, func(o *app.Options) { o.MetricsBindAddress = metrics })
	startRunning(t, op, "held", pausePolicy)
	require.NoError(t, etcdtest.PauseManually(t.Context(), pd, "held", "maintenance window"))
	if hasTracker(t) {
		// TiDB Operator v1.6.4-v1.6.6 take BR's pause (severity REGULAR_OPERATION) for an
		// error pause; the kernel probe knows better, and we leave it paused.
		eventually(t, op.Namespace, "held", tiDBOperatorNotices, "TiDB Operator records the pause",
			func(b *unstructured.Unstructured) bool { return entryPhase(b) == "RetryFailed" })
	} else {
		time.Sleep(5 * time.Second)
	}
	backups := settled(t, op, map[string]int{"held": 0})
	assert.True(t, episodeClosed(backups["held"]))
	assert.Zero(t, op.Resumes("held"))
	for _, reason := range []string{retry.ReasonRetryScheduled, retry.ReasonRetryStarted, retry.ReasonRecoveredFromKernel} {
		assert.Zero(t, eventReasons(t, op.Namespace, "held")[reason], reason)
	}
	resp, err := pd.Get(t.Context(), "/tidb/br-stream/pause/held")
	require.NoError(t, err)
	assert.EqualValues(t, 1, resp.Count, "still paused")

	// Left paused long enough, GC passes its checkpoint: nothing is written (it is the
	// operator's pause), but the gauge says so (TiDBLogBackupGCSafePointExceedsCheckpoint).
	series := fmt.Sprintf(`tidb_backup_guard_log_backup_gc_safe_point_exceeds_checkpoint{backup="held",namespace="%s"}`, op.Namespace)
	checkpoint := time.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
	require.NoError(t, etcdtest.PutGlobalCheckpoint(t.Context(), pd, "held", kernel.TSO(checkpoint)))
	require.NoError(t, etcdtest.SetGCSafePoint(t.Context(), pd, kernel.TSO(checkpoint.Add(-time.Minute))))
	require.Eventually(t, func() bool { v, ok := metricValue(t, metrics, series); return ok && v == 0 }, 30*time.Second, 200*time.Millisecond,
		"GC behind the checkpoint: 0")
	require.NoError(t, etcdtest.SetGCSafePoint(t.Context(), pd, kernel.TSO(checkpoint.Add(time.Minute))))
	require.Eventually(t, func() bool { v, ok := metricValue(t, metrics, series); return ok && v == 1 }, 30*time.Second, 200*time.Millisecond,
		"GC past the checkpoint: 1")
	backups = settled(t, op, map[string]int{"held": 0})
	assert.True(t, episodeClosed(backups["held"]))
	assert.Zero(t, op.Resumes("held"))
}

// TiDB Operator cannot reach this Backup's PD (its name is not in the controller-manager's
// hosts file): v1.6.5/v1.6.6 take the failed read for a missing task and mark the running
// log backup Failed. The probe reaches PD, sees the task, and puts the Backup back once;
// when TiDB Operator marks it Failed again at once, it is left so, with a Warning.
func TestFalseTaskNotFoundIsPutBackOnce(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	if !hasTracker(t) {
		t.Skip("TiDB Operator before v1.6.4 does not read PD")
	}
	op, pd := realCluster(t)
	require.NoError(t, testenv.CreateReadyTidbCluster(t.Context(), env.Client, op.Namespace, "hidden", map[string]string{realOperatorLabel: "real"}))
	startWatchingReconciler(t, pd, true, nil)
	b := richLogBackup(t, "unseen", pausePolicy)
	require.NoError(t, unstructured.SetNestedField(b.Object, "hidden", "spec", "br", "cluster"))
	op.Script("unseen", testenv.Succeed)
	require.NoError(t, op.Start(t.Context(), b))

	eventually(t, op.Namespace, "unseen", 60*time.Second, "put back once, then left as TiDB Operator wrote it", gaveUp)
	backups := settled(t, op, map[string]int{"unseen": 1})
	b = backups["unseen"]
	rec := firstRecord(t, b)
	assert.Contains(t, rec.RetryReason, "put back from the kernel state")
	assert.Contains(t, rec.OriginalReason, "LogBackupTaskNotFound")
	events := eventReasons(t, op.Namespace, "unseen")
	assert.Equal(t, 1, events[retry.ReasonRecoveredFromKernel], "put back once: %v", events)
	assert.Equal(t, 1, events[retry.ReasonRetrySkipped], "then a Warning, once: %v", events)
	assert.Equal(t, "LogBackupTaskNotFound", failedCondition(b)["reason"], "TiDB Operator's words stay")
}

// The kernel probe off, TiDB Operator v1.6.4+ keeps writing its LogBackupErrorPaused
// record while we wait and resume: our writes are counted (one Event each) and come to
// rest, with one record.
func TestOperatorPauseRecordsInterleaveWithOurs(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	if !hasTracker(t) {
		t.Skip("TiDB Operator before v1.6.4 records no error pause")
	}
	op, pd := realCluster(t)
	op.Advance = true
	startWatchingReconciler(t, pd, false, nil)
	slow := map[string]any{"minRetryDuration": "20s", "maxRetryTimes": int64(2), "retryTimeout": "10m"}
	startRunning(t, op, "noisy", slow)
	require.NoError(t, etcdtest.PauseByError(t.Context(), pd, "noisy", 4, "KV:LogBackup:Io", "disk full"))
	b := eventually(t, op.Namespace, "noisy", 3*time.Minute, "the pause is recorded", func(b *unstructured.Unstructured) bool {
		return len(recordsOf(t, b)) == 1
	})
	before := b.GetResourceVersion()
	eventually(t, op.Namespace, "noisy", 4*time.Minute, "resumed, running again", runsAgain)
	backups := settled(t, op, map[string]int{"noisy": 1})
	assert.NotEqual(t, before, backups["noisy"].GetResourceVersion())
	events := eventReasons(t, op.Namespace, "noisy")
	ours := 0
	for reason, n := range events {
		if strings.HasPrefix(reason, "Retry") || reason == retry.ReasonRecoveredFromKernel || reason == retry.ReasonPauseRecordOutdated {
			ours += n
		}
	}
	// RetryScheduled, RetryStarted (again only for a lost hand-off), RetrySucceeded, and
	// at most one put-back of a stale record.
	assert.Equal(t, 1, events[retry.ReasonRetryScheduled], "events: %v", events)
	assert.Equal(t, 1, events[retry.ReasonRetrySucceeded], "events: %v", events)
	assert.LessOrEqual(t, ours, 3+3+1, "our writes: %v", events)
}

// The checkpoint lag of a running log backup: the gauge and the Events, from PD (kernel
// probe on) and from TiDB Operator's status.logCheckpointTs (probe off, v1.6.4+).
func TestCheckpointLagIsWatched(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	for _, probe := range []bool{true, false} {
		name := map[bool]string{true: "from PD", false: "from status.logCheckpointTs"}[probe]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if !probe && !hasTracker(t) {
				t.Skip("TiDB Operator before v1.6.4 does not write status.logCheckpointTs")
			}
			op, pd := realCluster(t)
			metrics := metricsAddress(t)
			startWatchingReconciler(t, pd, probe, func(o *app.Options) {
				o.MetricsBindAddress = metrics
				o.CheckpointLagWarning = time.Minute
			})
			startRunning(t, op, "lag", pausePolicy)
			// The task is stuck an hour behind (nothing is flushed).
			behind := time.Now().Add(-time.Hour).Truncate(time.Second)
			require.NoError(t, etcdtest.PutGlobalCheckpoint(t.Context(), pd, "lag", kernel.TSO(behind)))

			series := fmt.Sprintf(`tidb_backup_guard_log_backup_checkpoint_lag_seconds{backup="lag",namespace="%s"}`, op.Namespace)
			wait := 30 * time.Second
			if !probe {
				wait = 3 * time.Minute // TiDB Operator copies the checkpoint once a minute
			}
			require.Eventually(t, func() bool { v, ok := metricValue(t, metrics, series); return ok && v >= 3600 }, wait, 200*time.Millisecond)
			require.Eventually(t, func() bool {
				return len(eventMessages(t, op.Namespace, "lag", reconciler.ReasonCheckpointLagging)) == 1
			},
				10*time.Second, 100*time.Millisecond)
			msg := eventMessages(t, op.Namespace, "lag", reconciler.ReasonCheckpointLagging)[0]
			assert.Contains(t, msg, "Warning: the log backup's checkpoint is behind: checkpoint "+behind.UTC().Format(time.RFC3339))
			assert.Contains(t, msg, "(warning at 1m)")
			paused, ok := metricValue(t, metrics, fmt.Sprintf(`tidb_backup_guard_log_backup_paused_by_error{backup="lag",namespace="%s"}`, op.Namespace))
			assert.True(t, ok)
			assert.Zero(t, paused)

			// Flushing works again: the checkpoint catches up.
			op.SetAdvance(true)
			require.Eventually(t, func() bool { v, ok := metricValue(t, metrics, series); return ok && v < 60 }, wait, 200*time.Millisecond)
			require.Eventually(t, func() bool {
				return len(eventMessages(t, op.Namespace, "lag", reconciler.ReasonCheckpointCaughtUp)) == 1
			},
				10*time.Second, 100*time.Millisecond)
			assert.Contains(t, eventMessages(t, op.Namespace, "lag", reconciler.ReasonCheckpointCaughtUp)[0], "Normal: the log backup's checkpoint caught up")
			settled(t, op, map[string]int{"lag": 0})
			assert.Len(t, eventMessages(t, op.Namespace, "lag", reconciler.ReasonCheckpointLagging), 1, "one Event per crossing")
		})
	}
}
