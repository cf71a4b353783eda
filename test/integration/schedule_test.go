package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/cmd/tidb-backup-guard/app"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// deletingSchedule is a BackupSchedule whose maxBackups clean-up deletes its own log backup
// (tidb-operator#6320): a log template, maxBackups 2, no maxReservedTime, a tick a minute.
func deletingSchedule(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := testenv.Object(`
apiVersion: pingcap.com/v1alpha1
kind: BackupSchedule
metadata:
  name: ` + name + `
  labels:
    ` + realOperatorLabel + `: real
spec:
  schedule: "* * * * *"
  maxBackups: 2
  backupTemplate:
    br: {cluster: basic}
    s3: {provider: aws, bucket: backups, prefix: snap, secretName: s3-secret}
  logBackupTemplate:
    backupMode: log
    backoffRetryPolicy: {minRetryDuration: 30s, maxRetryTimes: 5, retryTimeout: 30m}
    br: {cluster: basic}
    s3: {provider: aws, bucket: backups, prefix: log, secretName: s3-secret}
`)
	require.NoError(t, err)
	return u
}

// Beside the real controller-manager: a schedule that gets past admission
// (created before the webhook, or where it does not select) loses its log backup to
// TiDB Operator's maxBackups clean-up within a few ticks, which runs log-stop. The
// reconciler warns about the schedule once and keeps a gauge at 1, and writes nothing.
// (That the webhook refuses such a schedule: TestRealOperatorMakesALogBackupFromALogTemplate.)
func TestScheduleWithMaxBackupsLosesItsLogBackup(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	op, pd := realCluster(t)
	metrics := metricsAddress(t)
	startWatchingReconciler(t, pd, false, func(o *app.Options) { o.MetricsBindAddress = metrics })
	ctx := t.Context()
	op.Script("log-daily", testenv.Succeed)
	schedule := deletingSchedule(t, "daily")
	schedule.SetNamespace(op.Namespace)
	require.NoError(t, env.Client.Create(ctx, schedule))

	// The snapshot backups of each tick complete (the backup-manager's write, which
	// nothing plays here), so that the schedule makes the next one.
	snapshots := map[string]bool{}
	completeSnapshots := func() {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(testenv.BackupGVK.GroupVersion().WithKind("BackupList"))
		require.NoError(t, env.Client.List(ctx, list, client.InNamespace(op.Namespace)))
		for _, b := range list.Items {
			if mode, _, _ := unstructured.NestedString(b.Object, "spec", "backupMode"); mode == "log" || b.GetDeletionTimestamp() != nil {
				continue
			}
			snapshots[b.GetName()] = true
			if phase, _, _ := unstructured.NestedString(b.Object, "status", "phase"); phase == "Complete" {
				continue
			}
			require.NoError(t, op.UpdateBackup(ctx, b.GetName(), func(o map[string]any) {
				_ = unstructured.SetNestedField(o, "Complete", "status", "phase")
				_ = unstructured.SetNestedSlice(o, []any{map[string]any{"type": "Complete", "status": "True",
					"lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}}, "status", "conditions")
			}))
		}
	}
	var lost *unstructured.Unstructured
	require.Eventually(t, func() bool {
		completeSnapshots()
		b := testenv.Empty(testenv.BackupGVK)
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: op.Namespace, Name: "log-daily"}, b)
		if err == nil && b.GetDeletionTimestamp() != nil {
			lost = b
		}
		return lost != nil || (client.IgnoreNotFound(err) == nil && err != nil && len(snapshots) > 0)
	}, 4*time.Minute, time.Second, "TiDB Operator's maxBackups clean-up deletes log-daily")
	t.Logf("snapshot backups made: %d", len(snapshots))
	if lost != nil {
		commitTs, _, _ := unstructured.NestedString(lost.Object, "status", "commitTs")
		assert.NotEmpty(t, commitTs, "the log backup had started")
	}
	require.Eventually(t, func() bool {
		return env.Client.Get(ctx, client.ObjectKey{Namespace: op.Namespace, Name: "stop-log-daily"}, &batchv1.Job{}) == nil
	}, 30*time.Second, 200*time.Millisecond, "its cleaner runs log-stop")

	// The reconciler told about it once, and changed nothing.
	warnings := scheduleEvents(t, op.Namespace, "daily")
	require.Len(t, warnings, 1, "%v", warnings)
	assert.True(t, strings.HasPrefix(warnings[0], "Warning: spec.maxBackups: Forbidden:"), warnings[0])
	assert.Contains(t, warnings[0], "tidb-operator#6320")
	series := fmt.Sprintf(`tidb_backup_guard_schedules_deleting_log_backup{namespace="%s",schedule="daily"}`, op.Namespace)
	v, ok := metricValue(t, metrics, series)
	assert.True(t, ok && v == 1, "the gauge is 1: %v %v", v, ok)
	cur := get(t, testenv.BackupScheduleGVK, op.Namespace, "daily")
	assert.Empty(t, managersOf(cur, "tidb-backup-guard"), "the schedule is not written")

	// Fixed by its owner: the gauge goes, and no more Events.
	require.NoError(t, unstructured.SetNestedField(cur.Object, "72h", "spec", "maxReservedTime"))
	require.NoError(t, env.Client.Update(ctx, cur))
	require.Eventually(t, func() bool { _, ok := metricValue(t, metrics, series); return !ok }, 10*time.Second, 100*time.Millisecond)
	settled(t, op, nil)
	assert.Len(t, scheduleEvents(t, op.Namespace, "daily"), 1)
}

// scheduleEvents lists the ScheduleDeletesLogBackup Events about a BackupSchedule.
func scheduleEvents(t *testing.T, ns, name string) []string {
	t.Helper()
	list := &eventsv1.EventList{}
	require.NoError(t, env.Client.List(t.Context(), list, client.InNamespace(ns)))
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "BackupSchedule" && e.Regarding.Name == name && e.Reason == reconciler.ReasonScheduleDeletesLogBackup {
			n := 1
			if e.Series != nil {
				n = int(e.Series.Count)
			}
			for range n {
				out = append(out, e.Type+": "+e.Note)
			}
		}
	}
	return out
}

// managersOf lists the field managers of an object whose names start with prefix.
func managersOf(u *unstructured.Unstructured, prefix string) []string {
	var out []string
	for _, m := range u.GetManagedFields() {
		if strings.HasPrefix(m.Manager, prefix) {
			out = append(out, m.Manager)
		}
	}
	return out
}
