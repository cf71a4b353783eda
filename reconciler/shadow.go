package reconciler

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
)

// ShadowReasonPrefix starts the reason of every Event shadow mode emits: WouldRecordFailure,
// WouldDeleteJob, WouldStartRetry, WouldHandOff, WouldGiveUp, WouldCloseEpisode, WouldRecover, WouldPutBack.
const ShadowReasonPrefix = "Would"

// shadowRecheck is how often, in shadow mode, a Backup with a decision nobody carries out
// is decided on again: time alone can change it (a failure ages past retryTimeout).
const shadowRecheck = time.Minute

// shadow reports, once per distinct decision, what enforcing would do about a Backup, and
// does nothing else: no write, no Job deletion. acts says whether d is a decision that
// enforcing would carry out (not a wait).
func (r *Reconciler) shadow(u *unstructured.Unstructured, d retry.Decision, acts, running bool) reconcile.Result {
	key := types.NamespacedName{Namespace: u.GetNamespace(), Name: u.GetName()}
	if !acts {
		r.shadowed.Delete(key)
		after := d.RequeueAfter
		if d.Action == retry.ActNone {
			after = 0
		}
		return reconcile.Result{RequeueAfter: r.watchAgain(running, after)}
	}
	sig := fmt.Sprintf("%s/%s/%d/%s/%s", d.Action, d.Command, d.RetryNum, d.Reason, d.ConditionReason)
	if prev, ok := r.shadowed.Swap(key, sig); !ok || prev != sig {
		r.Metrics.shadowed(u.GetNamespace(), d)
		if r.Recorder != nil {
			r.Recorder.Eventf(u, nil, corev1.EventTypeNormal, ShadowReasonPrefix+string(d.Action), string(d.Action),
				"shadow mode, nothing was changed: %s", shadowNote(u.GetName(), d))
		}
	}
	return reconcile.Result{RequeueAfter: r.watchAgain(running, shadowRecheck)}
}

// shadowNote says what enforcing would have done.
func shadowNote(backup string, d retry.Decision) string {
	what := map[retry.Action]string{
		retry.ActRecordFailure: "would record the failure",
		retry.ActGiveUp:        "would mark " + d.Command + " failed (" + d.ConditionReason + ")",
		retry.ActDeleteJob:     "would delete Job " + retry.JobName(backup, d.Command) + " of the failed attempt before the retry",
		retry.ActStartRetry:    "would start the retry",
		retry.ActHandOff:       "would hand the resume to TiDB Operator",
		retry.ActCloseEpisode:  "would close the retry episode",
		retry.ActRecover:       "would recover without a re-run",
		retry.ActPutBack:       "would set TiDB Operator's record of the running log backup back",
	}[d.Action]
	if d.Message == "" {
		return what
	}
	return what + ": " + d.Message
}
