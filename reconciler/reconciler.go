package reconciler

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
)

// BackupGVK is TiDB Operator's Backup.
var BackupGVK = schema.GroupVersionKind{Group: "pingcap.com", Version: "v1alpha1", Kind: "Backup"}

// JobLabels select the Jobs TiDB Operator runs backups in; the Job cache holds only these.
var JobLabels = map[string]string{"app.kubernetes.io/component": "backup", "app.kubernetes.io/managed-by": "backup-operator"}

// Reconciler enforces the retry policy of log Backups (see the package doc).
type Reconciler struct {
	// Client reads from the cache and writes.
	Client client.Client
	// APIReader reads from the API server, to confirm a decision before acting on it.
	APIReader client.Reader
	// Recorder emits Events on Backups; nil emits none.
	Recorder events.EventRecorder
	// Clock is the time source of every decision.
	Clock clock.PassiveClock
	// Config supplies defaults for missing policy fields.
	Config defaults.Config
	// Policies, if set, gives the configuration per namespace (namespace overrides of the
	// log defaults) in place of Config; the webhooks ask the same Resolver.
	Policies defaults.Resolver
	// Shadow: decide as usual, but only report what would be done (Would* Events and
	// metrics); never write a Backup or delete a Job.
	Shadow bool
	// NonRetryable lists failure substrings that are not retried (DefaultNonRetryable).
	NonRetryable []string
	// Metrics records outcomes; nil records nothing.
	Metrics *Metrics
	// Kernel, if set, is consulted before a retry starts (package kernel); nil: off.
	Kernel KernelProbe
	// Guard, if set, suspends writes to a Backup written too often (WriteGuard); nil:
	// no limit.
	Guard *WriteGuard
	// KernelEvents, if set, carries the Backups whose kernel probe answered, to be
	// reconciled again (wired by SetupWithManager); NotifyKernel sends to it. Buffered.
	KernelEvents chan event.TypedGenericEvent[*unstructured.Unstructured]
	// WatchInterval is how often a running log backup is looked at again although
	// nothing changed (its checkpoint lag, and with the kernel probe its task in PD);
	// 0: DefaultWatchInterval.
	WatchInterval time.Duration
	// LagWarning is the checkpoint lag past which a running log backup gets a
	// CheckpointLagging Warning Event; 0: DefaultLagWarning.
	LagWarning time.Duration
	// NoResumeHandOff: TiDB Operator cannot run log-resume (v1.6.0), so a log backup
	// paused by an error is only recorded (and alerted on), never handed off.
	NoResumeHandOff bool

	// lagging holds the running log backups whose lag passed LagWarning (Events are
	// sent on each crossing).
	lagging sync.Map
	// shadowed holds, in shadow mode, the last decision reported for each Backup, so
	// that a decision that stays the same (nothing carries it out) is reported once.
	shadowed sync.Map
}

// config is the defaulting configuration that holds in a namespace.
func (r *Reconciler) config(namespace string) defaults.Config {
	if r.Policies != nil {
		return r.Policies.For(namespace)
	}
	return r.Config
}

// input is what a decision on u starts from; the Job, the pods and the kernel's answer
// are added by the caller. Reconcile and Explain both build it here.
func (r *Reconciler) input(u *unstructured.Unstructured) Input {
	return Input{Now: r.Clock.Now(), Backup: viewBackup(u), Config: r.config(u.GetNamespace()),
		NonRetryable: r.NonRetryable, NoHandOff: r.NoResumeHandOff}
}

// Defaults for running log backups.
const (
	DefaultWatchInterval = time.Minute
	DefaultLagWarning    = 10 * time.Minute
)

// Events about the checkpoint of running log backups.
const (
	ReasonCheckpointLagging  = "CheckpointLagging"
	ReasonCheckpointCaughtUp = "CheckpointCaughtUp"
)

// KernelProbe reads log backup tasks from the cluster (implemented by kernel.Prober).
type KernelProbe interface {
	// Lookup answers from a recent result, or starts a probe and returns false; the
	// Backup is notified when the answer is in.
	Lookup(t kernel.Target) (kernel.Result, bool)
	// Release lets go of what a Backup used (it is gone).
	Release(backup types.NamespacedName)
	// Timeout is the longest a probe takes.
	Timeout() time.Duration
}

// NotifyKernel enqueues a Backup whose kernel probe answered (kernel.Config.Notify).
func (r *Reconciler) NotifyKernel(key types.NamespacedName) {
	if r.KernelEvents == nil {
		return
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(BackupGVK)
	u.SetNamespace(key.Namespace)
	u.SetName(key.Name)
	select {
	case r.KernelEvents <- event.TypedGenericEvent[*unstructured.Unstructured]{Object: u}:
	default:
		// Full (or nobody reads): the AwaitKernel requeue brings the Backup back anyway,
		// and the probe's goroutine must never block on it.
	}
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// maxConflicts bounds how often one reconcile re-reads and re-decides after a write
// conflict before handing the request back to the queue.
const maxConflicts = 5

// conflictRequeue is the base delay after maxConflicts conflicts in a row. Contention is
// expected (TiDB Operator and the backup-manager write the same object), not an error:
// an error would make the queue back off exponentially, delaying the retry for minutes.
const conflictRequeue = 100 * time.Millisecond

// Reconcile decides on cached data and, before acting, decides again on fresh data from
// the API server: a stale cache may never delete a new Job or record a failure twice.
// Writes carry the resourceVersion that was read; a conflict means someone else wrote
// first, so the object is read again and the decision made again. Recording a failure is
// the exception that skips the fresh read of the Backup (recordOnCached).
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := logf.FromContext(ctx)
	var reader client.Reader = r.Client
	fresh := false            // reading from the API server rather than the cache
	patchTried := false       // recordOnCached was tried (once per reconcile)
	var related *relatedState // the Job and pods, as observed by the current reader
	for conflicts := 0; conflicts < maxConflicts; {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(BackupGVK)
		if err := reader.Get(ctx, req.NamespacedName, u); err != nil {
			if apierrors.IsNotFound(err) {
				r.Metrics.setWaiting(req.NamespacedName, "", false)
				r.forgetRunning(req.NamespacedName)
				r.releaseKernel(req.NamespacedName)
				r.Guard.Forget(req.NamespacedName)
				r.shadowed.Delete(req.NamespacedName)
				return reconcile.Result{}, nil
			}
			return reconcile.Result{}, fmt.Errorf("get backup: %w", err)
		}
		in := r.input(u)
		// After a conflict only the Backup is read again: its Job and pods were just
		// read fresh, and nobody creates the Job anew before this reconciler hands the
		// command back. A changed command needs its own Job, though.
		if related == nil || related.command != currentCommand(in.Backup) {
			var err error
			if related, err = r.observeRelated(ctx, reader, in.Backup, fresh); err != nil {
				return reconcile.Result{}, err
			}
		}
		in.Job, in.LivePods = related.job, related.livePods
		if in.Backup.Deleting {
			r.releaseKernel(req.NamespacedName)
		}
		running := runningLog(in.Backup)
		if running && r.Kernel != nil {
			// A running log backup is only decided on with the cluster's account of its
			// task: its pause, and whether TiDB Operator's verdict on it is true.
			res, ok := r.Kernel.Lookup(r.watchTarget(in.Backup))
			if !ok {
				return reconcile.Result{RequeueAfter: r.Kernel.Timeout() + time.Second}, nil
			}
			in.Kernel = &res
		}
		if !fresh {
			r.observeRunning(u, in, running)
		}
		d := Decide(in)
		if fresh {
			d = r.consultKernel(&in, d)
		}
		acts := d.Action != ActNone && d.Action != ActWait && d.Action != ActAwaitCleanup && d.Action != ActAwaitKernel
		if r.Shadow {
			if acts && !fresh {
				// Decide on fresh data, as enforcing would, before saying what it would do.
				reader, fresh, related = r.APIReader, true, nil
				continue
			}
			return r.shadow(u, d, acts, running), nil
		}
		if acts && d.Action != ActDeleteJob {
			if until, tripped, blocked := r.Guard.Check(req.NamespacedName, in.Now); blocked {
				if tripped {
					r.writesSuspended(log, u, d, until)
				}
				return reconcile.Result{RequeueAfter: until.Sub(in.Now)}, nil
			}
		}
		if acts && !fresh {
			if d.Action == ActRecordFailure && !patchTried {
				// The common write, recording a failure, goes out without re-reading the
				// Backup: see recordOnCached. A conflict falls through to the fresh path.
				patchTried = true
				done, err := r.recordOnCached(ctx, log, u, in, d)
				if err != nil {
					return reconcile.Result{}, err
				}
				if done != nil {
					return *done, nil
				}
				conflicts++
			}
			reader, fresh, related = r.APIReader, true, nil
			continue
		}
		r.Metrics.setWaiting(req.NamespacedName, d.Command, waits(d))
		log := log.WithValues("command", d.Command, "action", d.Action, "retryNum", d.RetryNum)
		switch d.Action {
		case ActNone:
			return reconcile.Result{RequeueAfter: r.watchAgain(running, 0)}, nil
		case ActWait, ActAwaitCleanup, ActAwaitKernel:
			log.V(1).Info("Waiting", "requeueAfter", d.RequeueAfter, "detail", d.Message)
			return reconcile.Result{RequeueAfter: r.watchAgain(running, d.RequeueAfter)}, nil
		case ActDeleteJob:
			return reconcile.Result{RequeueAfter: d.RequeueAfter}, r.deleteJob(ctx, log, in.Job, u.GetNamespace())
		}
		// Only ever write an object read fresh from the API server: cached Backups are
		// stripped to what decisions read (cache.go), and writing one back would drop
		// every other field. The loop above guarantees it; this keeps it guaranteed.
		if !fresh {
			return reconcile.Result{}, fmt.Errorf("refusing to write a cached copy of backup %s", req.NamespacedName)
		}
		if err := apply(u, d, in.Now); err != nil {
			return reconcile.Result{}, fmt.Errorf("apply %s: %w", d.Action, err)
		}
		if err := r.Client.Update(ctx, u); err != nil {
			if apierrors.IsConflict(err) {
				conflicts++
				log.V(1).Info("Write conflict; reading again", "conflicts", conflicts)
				continue
			}
			return reconcile.Result{}, fmt.Errorf("update backup: %w", err)
		}
		log.Info("Updated backup", "reason", d.Reason, "detail", d.Message)
		r.Guard.Wrote(req.NamespacedName, in.Now)
		r.Metrics.written(u.GetNamespace(), d)
		r.event(u, d)
		return reconcile.Result{RequeueAfter: r.watchAgain(running, d.RequeueAfter)}, nil
	}
	log.V(1).Info("Still conflicting; trying again shortly", "conflicts", maxConflicts)
	return reconcile.Result{RequeueAfter: conflictRequeue + rand.N(conflictRequeue)}, nil
}

// recorded is the outcome of recordOnCached: nil when it did not write.
type recorded = *reconcile.Result

// recordOnCached records a failure decided on the cached Backup with one merge patch that
// carries the cached resourceVersion, instead of re-reading the Backup first. The
// precondition makes that as safe as a fresh read: the patch applies only if the Backup
// is still the one decided on, and a conflict (a stale cache, or another writer) sends
// the reconcile to the fresh path. The Job, which the decision may rest on (a pod death),
// is read fresh first: a cached Job could be one a retry already replaced. The patch
// holds only owned fields, the episode annotation and status.backoffRetryStatus (kept whole
// by the cache transform), so nothing else in the object can be lost. It saves one GET
// per recorded failure (docs/benchmarks.md).
func (r *Reconciler) recordOnCached(ctx context.Context, log logr.Logger, cached *unstructured.Unstructured, in Input, d Decision) (recorded, error) {
	if in.Job != nil {
		rel, err := r.observeRelated(ctx, r.APIReader, in.Backup, false)
		if err != nil {
			return nil, err
		}
		in.Job, in.LivePods = rel.job, nil
		if d = Decide(in); d.Action != ActRecordFailure {
			return nil, nil // the fresh Job changed the decision: take the fresh path
		}
	}
	patch, err := recordPatch(cached, d, in.Now)
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", d.Action, err)
	}
	target := &unstructured.Unstructured{}
	target.SetGroupVersionKind(BackupGVK)
	target.SetNamespace(cached.GetNamespace())
	target.SetName(cached.GetName())
	if err := r.Client.Patch(ctx, target, client.RawPatch(types.MergePatchType, patch)); err != nil {
		if apierrors.IsConflict(err) {
			log.V(1).Info("Write conflict on the cached Backup; reading it again")
			return nil, nil
		}
		return nil, fmt.Errorf("patch backup: %w", err)
	}
	log.WithValues("command", d.Command, "action", d.Action, "retryNum", d.RetryNum).Info("Updated backup", "reason", d.Reason, "detail", d.Message)
	key := types.NamespacedName{Namespace: cached.GetNamespace(), Name: cached.GetName()}
	r.Guard.Wrote(key, in.Now)
	r.Metrics.setWaiting(key, d.Command, waits(d))
	r.Metrics.written(cached.GetNamespace(), d)
	r.event(cached, d)
	return &reconcile.Result{RequeueAfter: d.RequeueAfter}, nil
}

// runningLog reports a running log backup: log-start done, and the command TiDB Operator
// works on is log-start or log-resume. Its task is watched (pause.go, lag).
func runningLog(b *backupView) bool {
	if b.Mode != "log" || b.Deleting || b.CommitTs == "" {
		return false
	}
	cmd := currentCommand(b)
	return cmd == CmdStart || cmd == CmdResume
}

// watchAttempt names the kernel probe's periodic reading of a running task (results are
// reused for the probe's cache TTL).
const watchAttempt = "watch"

func (r *Reconciler) watchTarget(b *backupView) kernel.Target {
	return kernel.Target{Backup: types.NamespacedName{Namespace: b.Namespace, Name: b.Name},
		Cluster: b.Cluster, Namespace: b.ClusterNamespace, Task: b.Name, Attempt: watchAttempt}
}

// watchAgain bounds a requeue of a running log backup by the watch interval.
func (r *Reconciler) watchAgain(running bool, after time.Duration) time.Duration {
	if !running {
		return after
	}
	every := r.WatchInterval
	if every <= 0 {
		every = DefaultWatchInterval
	}
	if after <= 0 || after > every {
		return every
	}
	return after
}

// observeRunning sets the gauges of a running log backup and sends an Event when its
// checkpoint lag crosses LagWarning, either way. Nothing is written to the Backup.
func (r *Reconciler) observeRunning(u *unstructured.Unstructured, in Input, running bool) {
	key := types.NamespacedName{Namespace: u.GetNamespace(), Name: u.GetName()}
	if !running {
		r.forgetRunning(key)
		return
	}
	sig, _ := pauseOf(in)
	// Only a reading of both sets the gauge; a reconcile without one (the probe is off,
	// or has not answered) leaves the last value, so that the series does not flap.
	if k := in.Kernel; k != nil && k.Err == nil && k.Task != nil && k.Task.Exists && k.Task.GCSafePoint > 0 && k.Task.CheckpointTS > 0 {
		r.Metrics.setGCPassed(key, k.Task.GCPassedCheckpoint())
	}
	at, known := checkpointTime(in)
	if !known {
		r.Metrics.setRunning(key, nil, sig != nil)
		return
	}
	lag := max(in.Now.Sub(at), 0)
	r.Metrics.setRunning(key, &lag, sig != nil)
	limit := r.LagWarning
	if limit <= 0 {
		limit = DefaultLagWarning
	}
	_, was := r.lagging.Load(key)
	lagging := lag > limit
	if lagging == was {
		return
	}
	if lagging {
		r.lagging.Store(key, struct{}{})
	} else {
		r.lagging.Delete(key)
	}
	detail := fmt.Sprintf("checkpoint %s, lag %s (warning at %s)", rfc3339(at),
		defaults.FormatDuration(lag.Round(time.Second)), defaults.FormatDuration(limit))
	if sig != nil {
		detail += "; paused by an error, reported by " + sig.source + ": " + sig.message
	}
	if r.Recorder == nil {
		return
	}
	if lagging {
		r.Recorder.Eventf(u, nil, corev1.EventTypeWarning, ReasonCheckpointLagging, "Observe", "the log backup's checkpoint is behind: %s", detail)
	} else {
		r.Recorder.Eventf(u, nil, corev1.EventTypeNormal, ReasonCheckpointCaughtUp, "Observe", "the log backup's checkpoint caught up: %s", detail)
	}
}

func (r *Reconciler) forgetRunning(key types.NamespacedName) {
	r.Metrics.forgetRunning(key)
	r.lagging.Delete(key)
}

// consultKernel asks the kernel probe about a due retry and decides again with its
// answer. Only on fresh reads: the old Job and its pods were then seen gone on the API
// server itself, so nothing can still register the task, and the answer (reused only for
// this attempt) reflects the cluster after the failed run. The probe runs in the
// background; until it answers, the decision is to wait.
func (r *Reconciler) consultKernel(in *Input, d Decision) Decision {
	if d.Action != ActStartRetry || r.Kernel == nil {
		return d
	}
	b := in.Backup
	recs := episodeRecords(b.Records)
	last := recs[len(recs)-1] // StartRetry is only decided on a pending record
	res, ok := r.Kernel.Lookup(kernel.Target{Backup: types.NamespacedName{Namespace: b.Namespace, Name: b.Name},
		Cluster: b.Cluster, Namespace: b.ClusterNamespace, Task: b.Name,
		Attempt: strconv.FormatInt(last.RetryNum, 10) + "@" + rfc3339(last.DetectFailedAt)})
	if !ok {
		// The answer enqueues the Backup; the requeue is the fallback should it be lost.
		return Decision{Action: ActAwaitKernel, Command: d.Command, RetryNum: d.RetryNum, RequeueAfter: r.Kernel.Timeout() + time.Second,
			Message: "reading the log backup task from PD before the retry"}
	}
	in.Kernel = &res
	return Decide(*in)
}

func (r *Reconciler) releaseKernel(key types.NamespacedName) {
	if r.Kernel != nil {
		r.Kernel.Release(key)
	}
}

// relatedState is what a decision needs besides the Backup: the current command's Job
// and, on fresh reads, its live pods.
type relatedState struct {
	command  string
	job      *jobView
	livePods []string
}

// observeRelated reads the current command's Job and, on fresh reads, the pods of that
// Job that still run: the cache holds no Pods, and they matter only just before a retry
// starts, which always follows a fresh read.
func (r *Reconciler) observeRelated(ctx context.Context, reader client.Reader, b *backupView, fresh bool) (*relatedState, error) {
	rs := &relatedState{command: currentCommand(b)}
	if b.Mode != "log" || b.Deleting || rs.command == "" {
		return rs, nil
	}
	jobName := JobName(b.Name, rs.command)
	job := &batchv1.Job{}
	err := reader.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: jobName}, job)
	switch {
	case err == nil:
		rs.job = viewJob(job, b.UID)
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("get job %s: %w", jobName, err)
	case fresh:
		if rs.livePods, err = r.livePods(ctx, b.Namespace, jobName); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// legacyJobNameLabel is the pod label Jobs set before Kubernetes 1.27 (and still set).
const legacyJobNameLabel = "job-name"

// livePods lists the pods of a Job (by either job-name label the Job controller sets)
// that have not terminated.
func (r *Reconciler) livePods(ctx context.Context, namespace, jobName string) ([]string, error) {
	seen := map[types.UID]bool{}
	var live []string
	for _, label := range []string{batchv1.JobNameLabel, legacyJobNameLabel} {
		pods := &corev1.PodList{}
		if err := r.APIReader.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabels{label: jobName}); err != nil {
			return nil, fmt.Errorf("list pods of job %s: %w", jobName, err)
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if !seen[p.UID] && !podTerminated(p) {
				live = append(live, p.Name)
			}
			seen[p.UID] = true
		}
	}
	return live, nil
}

// deleteJob deletes the old Job with foreground propagation, so the Job object stays
// until its pods are gone, and with a UID precondition, so only the Job that was
// observed can be deleted.
func (r *Reconciler) deleteJob(ctx context.Context, log logr.Logger, j *jobView, namespace string) error {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: j.Name}}
	err := r.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationForeground),
		client.Preconditions{UID: &j.UID})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete job %s: %w", j.Name, err)
	}
	log.Info("Deleted the old job before a retry", "job", j.Name)
	return nil
}

// ReasonWritesSuspended is the Event of a Backup whose writes the WriteGuard suspended.
const ReasonWritesSuspended = "WritesSuspended"

// writesSuspended reports, once per suspension, that a Backup is no longer written: the
// decision that would have been written is named, since it is the one that repeats.
func (r *Reconciler) writesSuspended(log logr.Logger, u *unstructured.Unstructured, d Decision, until time.Time) {
	msg := fmt.Sprintf("written more than %d times within %s: writes suspended until %s, the last decision (%s %s) "+
		"was not written; this is a bug or a fight with another controller, please report it",
		r.Guard.Limit, defaults.FormatDuration(r.Guard.Window), rfc3339(until), d.Action, d.Reason)
	log.Error(nil, "Writes suspended: the backup is written too often", "action", d.Action, "reason", d.Reason, "until", until)
	r.Metrics.suspended(u.GetNamespace())
	if r.Recorder != nil {
		r.Recorder.Eventf(u, nil, corev1.EventTypeWarning, ReasonWritesSuspended, string(d.Action), "%s", msg)
	}
}

// event reports a written decision on the Backup.
func (r *Reconciler) event(u *unstructured.Unstructured, d Decision) {
	if r.Recorder == nil {
		return
	}
	eventType := corev1.EventTypeNormal // RetryStarted, RetrySucceeded, RecoveredFromKernel, ...
	switch d.Reason {
	case ReasonRetryScheduled, ReasonRetryExhausted, ReasonRetrySkipped:
		eventType = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(u, nil, eventType, d.Reason, string(d.Action), "%s", d.Message)
}

// SetupWithManager registers the controller: log Backups, and the Jobs they control.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	backup := &unstructured.Unstructured{}
	backup.SetGroupVersionKind(BackupGVK)
	isLog := predicate.NewPredicateFuncs(func(o client.Object) bool {
		u, ok := o.(*unstructured.Unstructured)
		return ok && str(u.Object, "spec", "backupMode") == "log"
	})
	b := ctrl.NewControllerManagedBy(mgr).
		Named("log-backup-retry").
		For(backup, builder.WithPredicates(isLog)).
		Owns(&batchv1.Job{}).
		WithOptions(opts)
	if r.KernelEvents != nil {
		b = b.WatchesRawSource(source.Channel(r.KernelEvents, &handler.TypedEnqueueRequestForObject[*unstructured.Unstructured]{}))
	}
	return b.Complete(r)
}
