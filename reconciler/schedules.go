package reconciler

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
)

// ReasonScheduleDeletesLogBackup is the Warning Event on a BackupSchedule whose maxBackups
// clean-up deletes its own log backup (defaults.ValidateScheduleRetention).
const ReasonScheduleDeletesLogBackup = "ScheduleDeletesLogBackup"

// ScheduleWatcher tells about the BackupSchedules that the validating webhook would refuse
// because TiDB Operator's maxBackups clean-up deletes their log backup (tidb-operator#6320):
// schedules created before the webhook, or in a namespace it does not select. It writes
// nothing to a schedule, since fixing it means choosing how long to keep backups, which is
// the user's call: it sends one Warning Event per setting of the clean-up fields (a change
// to maxBackups that keeps the problem warns again; TiDB Operator's own status writes,
// which bump metadata.generation since the CRD has no status subresource, do not) and
// keeps a gauge at 1 while the problem stands. Objects
// with the opt-out annotation are left alone, as the webhook and audit leave them.
//
// Which settings were warned about is kept in memory: a restarted or new leader warns
// once more about each schedule that still has the problem.
type ScheduleWatcher struct {
	// Client reads BackupSchedules (from the cache).
	Client client.Reader
	// Recorder emits the Events; nil emits none.
	Recorder events.EventRecorder
	// Metrics holds the gauge; nil records nothing.
	Metrics *Metrics

	warned sync.Map // types.UID -> the retention settings warned about (retentionKey)
}

// Reconcile looks at one BackupSchedule.
func (w *ScheduleWatcher) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(defaults.BackupScheduleGVK)
	if err := w.Client.Get(ctx, req.NamespacedName, u); err != nil {
		if apierrors.IsNotFound(err) {
			w.Metrics.setScheduleDeletingLogBackup(req.NamespacedName, false)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	problem := defaults.ScheduleRetentionOf(u.Object)
	if u.GetAnnotations()[defaults.KeepSchemaDefaultsAnnotation] == "true" || u.GetDeletionTimestamp() != nil {
		problem = nil
	}
	w.Metrics.setScheduleDeletingLogBackup(req.NamespacedName, problem != nil)
	if problem == nil {
		w.warned.Delete(u.GetUID())
		return reconcile.Result{}, nil
	}
	key := retentionKey(u)
	if k, ok := w.warned.Load(u.GetUID()); ok && k.(string) == key {
		return reconcile.Result{}, nil
	}
	logf.FromContext(ctx).Info("schedule deletes its own log backup", "detail", problem.Error())
	if w.Recorder != nil {
		w.Recorder.Eventf(u, nil, corev1.EventTypeWarning, ReasonScheduleDeletesLogBackup, "Warn",
			"%s. TiDB Operator will delete log-%s once %d snapshot backups exist; nothing was changed.",
			problem.Error(), u.GetName(), maxBackupsOf(u))
	}
	w.warned.Store(u.GetUID(), key)
	return reconcile.Result{}, nil
}

// retentionKey names what the problem depends on: the clean-up fields and whether there is
// a log template.
func retentionKey(u *unstructured.Unstructured) string {
	spec, _ := u.Object["spec"].(map[string]any)
	_, hasLog := spec["logBackupTemplate"]
	return fmt.Sprintf("maxBackups=%v maxReservedTime=%v log=%v", spec["maxBackups"], spec["maxReservedTime"], hasLog)
}

func maxBackupsOf(u *unstructured.Unstructured) int64 {
	n, _, _ := unstructured.NestedInt64(u.Object, "spec", "maxBackups")
	return n
}

// SetupWithManager registers the watcher: every BackupSchedule, whose spec changes (or
// whose annotations change, for the opt-out) are looked at.
func (w *ScheduleWatcher) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	schedule := &unstructured.Unstructured{}
	schedule.SetGroupVersionKind(defaults.BackupScheduleGVK)
	return ctrl.NewControllerManagedBy(mgr).
		Named("backup-schedule-retention").
		For(schedule).
		WithOptions(opts).
		Complete(w)
}

// scheduleKey names a schedule in the gauge.
func scheduleKey(key types.NamespacedName) []string { return []string{key.Namespace, key.Name} }
