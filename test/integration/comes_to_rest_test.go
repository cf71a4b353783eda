package integration

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/cmd/tidb-backup-guard/app"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// A log-start that fails once status.commitTs is set is decided once. Before
// the fix, either story below made the reconciler rewrite the Backup ~80 times a second
// with self-nesting messages; settled() is what sees it.
func TestFailedLogStartWithCommitTsIsDecidedOnce(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	startReconciler(t)
	op := operator(t)
	ctx := t.Context()

	// TiDB Operator v1.6.5's tracker could not read PD and marks the running log backup
	// Failed (LogBackupTaskNotFound); its words must stay.
	op.Script("notfound", testenv.Succeed)
	require.NoError(t, op.Start(ctx, richLogBackup(t, "notfound", quickPolicy)))
	eventually(t, op.Namespace, "notfound", 20*time.Second, "log-start succeeds",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" })
	const operatorMessage = "log backup task notfound not found in PD"
	require.NoError(t, op.UpdateBackup(ctx, "notfound", func(o map[string]any) {
		entry, _, _ := unstructured.NestedMap(o, "status", "logSubCommandStatuses", "log-start")
		entry["phase"] = "Failed"
		entry["conditions"] = []any{map[string]any{"type": "Failed", "status": "True", "command": "log-start",
			"reason": "LogBackupTaskNotFound", "message": operatorMessage, "lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}}
		_ = unstructured.SetNestedMap(o, entry, "status", "logSubCommandStatuses", "log-start")
		_ = unstructured.SetNestedField(o, "Failed", "status", "phase")
	}))
	// The pod died after the backup-manager wrote commitTs, before it wrote Complete.
	op.Script("died", testenv.CommitThenPodDeath)
	require.NoError(t, op.Start(ctx, richLogBackup(t, "died", quickPolicy)))

	backups := settled(t, op, map[string]int{"notfound": 1, "died": 1})

	b := backups["notfound"]
	assert.True(t, gaveUp(b))
	cond := failedCondition(b)
	require.NotNil(t, cond)
	assert.Equal(t, "LogBackupTaskNotFound", cond["reason"], "TiDB Operator's condition is not overwritten")
	assert.Equal(t, operatorMessage, cond["message"])
	r := firstRecord(t, b)
	assert.Equal(t, "LogBackupTaskNotFound: "+operatorMessage, r.OriginalReason, "the original reason, once")
	assert.Empty(t, r.ExpectedRetryAt, "no retry follows")

	b = backups["died"]
	assert.True(t, gaveUp(b))
	assert.Equal(t, "Failed", entryPhase(b))
	cond = failedCondition(b)
	require.NotNil(t, cond)
	assert.Equal(t, retry.ReasonCommitTsSet, cond["reason"])
	assert.Regexp(t, `^not retried: log-start is not re-run once status.commitTs is set, .*; last error: BackoffLimitExceeded: Job has reached the specified backoff limit$`, cond["message"])
	assert.Equal(t, 1, op.Runs("died"), "never re-run")

	for _, name := range []string{"notfound", "died"} {
		require.Eventually(t, func() bool { return eventReasons(t, op.Namespace, name)["RetrySkipped"] >= 1 }, 10*time.Second, 50*time.Millisecond)
		ev := eventReasons(t, op.Namespace, name)
		assert.Equal(t, 1, ev["RetrySkipped"], "one Event of ours for %s: %v", name, ev)
		for _, r := range []string{"RetryScheduled", "RetryStarted", "RetrySucceeded", "RetryExhausted", "EpisodeReset"} {
			assert.Zero(t, ev[r], "%s for %s: %v", r, name, ev)
		}
	}
}

// The write guard, with a loop forced on purpose: another controller that undoes every
// write of ours (it clears our records and episode and reports the failure anew). The
// guard stops writing that Backup, says so in an Event and a metric, and another Backup
// in the same namespace is retried as usual.
func TestWriteGuardStopsAForcedLoop(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	metrics := metricsAddress(t)
	const limit = 5
	s, err := env.StartReconciler(t.Context(), testLog(t), scoped(t, func(o *app.Options) {
		o.MetricsBindAddress = metrics
		o.WriteGuardLimit, o.WriteGuardWindow, o.WriteGuardCooldown = limit, time.Hour, time.Hour
	}))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Stop()) })
	op := operator(t)
	ctx := t.Context()

	op.Script("calm", testenv.BRError, testenv.Succeed)
	require.NoError(t, op.Start(ctx, richLogBackup(t, "calm", quickPolicy)))
	op.Script("fought", testenv.BRError)
	require.NoError(t, op.Start(ctx, richLogBackup(t, "fought", quickPolicy)))

	// The fighter: whenever our episode shows up on "fought", put the failure back as if
	// it were new. Each of our writes is answered by one of its own.
	fightCtx, stopFight := context.WithCancel(ctx)
	fights := make(chan int, 1)
	go func() {
		n := 0
		defer func() { fights <- n }()
		for fightCtx.Err() == nil {
			b := testenv.Empty(testenv.BackupGVK)
			if env.Client.Get(fightCtx, client.ObjectKey{Namespace: op.Namespace, Name: "fought"}, b) == nil && !episodeClosed(b) {
				ann := b.GetAnnotations()
				delete(ann, retry.EpisodeAnnotation)
				b.SetAnnotations(ann)
				unstructured.RemoveNestedField(b.Object, "status", "backoffRetryStatus")
				if env.Client.Update(fightCtx, b) == nil {
					n++
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	require.Eventually(t, func() bool { return eventReasons(t, op.Namespace, "fought")[reconciler.ReasonWritesSuspended] == 1 },
		30*time.Second, 50*time.Millisecond, "events: %v", eventReasons(t, op.Namespace, "fought"))
	// Once suspended, our side of the loop is gone; the fighter has nothing to answer.
	eventually(t, op.Namespace, "fought", 10*time.Second, "the fighter answered our last write", episodeClosed)
	stopFight()
	assert.Equal(t, limit, <-fights, "the fighter answered exactly the writes the guard allowed")
	assert.Equal(t, limit, eventReasons(t, op.Namespace, "fought")["RetryScheduled"], "one Event per write allowed")

	eventually(t, op.Namespace, "calm", 30*time.Second, "the other Backup is retried as usual",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
	settled(t, op, map[string]int{"calm": 1, "fought": 0})
	assert.Equal(t, 1, eventReasons(t, op.Namespace, "fought")[reconciler.ReasonWritesSuspended], "reported once")
	assert.Equal(t, 1, metric(t, metrics, `tidb_backup_guard_write_guard_suspensions_total{namespace="`+op.Namespace+`"}`))
}
