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
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
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
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
)

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
func (r *Reconciler) input(u *unstructured.Unstructured) retry.Input {
	return retry.Input{Now: r.Clock.Now(), Backup: retry.ViewBackup(u), Config: r.config(u.GetNamespace()),
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
	u.SetGroupVersionKind(defaults.BackupGVK)
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

// decided is a decision with what it rests on.
type decided struct {
	u       *unstructured.Unstructured
	in      retry.Input
	d       retry.Decision
	running bool
	// fresh: read from the API server, not the cache; only such a Backup is ever written.
	fresh   bool
	related *relatedState
}

// Probe reads a log backup task now (kernel.Prober.Probe). Explain passes one to
// DecideNow when the kernel probe is configured.
type Probe func(ctx context.Context, t kernel.Target) kernel.Result

// lookup asks for the kernel's reading of a task: ok false means it is not in yet (its
// arrival enqueues the Backup again).
type lookup func(ctx context.Context, t kernel.Target) (res kernel.Result, ok bool)

// kernelLookup is the running server's lookup (nil: the kernel probe is off).
func (r *Reconciler) kernelLookup() lookup {
	if r.Kernel == nil {
		return nil
	}
	return func(_ context.Context, t kernel.Target) (kernel.Result, bool) { return r.Kernel.Lookup(t) }
}

// decide reads a Backup through reader and decides on it. The Job and pods of related
// are reused while the command is the same (after a write conflict only the Backup is
// read again: nobody creates the Job anew before this reconciler hands the command back).
// A running log backup is decided on only with the kernel's reading of its task, when
// the probe is on; a nil result means it is not in yet.
func (r *Reconciler) decide(ctx context.Context, reader client.Reader, key types.NamespacedName, fresh bool,
	related *relatedState, ask lookup) (*decided, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(defaults.BackupGVK)
	if err := reader.Get(ctx, key, u); err != nil {
		return nil, fmt.Errorf("get backup: %w", err)
	}
	in := r.input(u)
	if related == nil || related.command != retry.CurrentCommand(in.Backup) {
		var err error
		if related, err = r.observeRelated(ctx, reader, in.Backup, fresh); err != nil {
			return nil, err
		}
	}
	in.Job, in.LivePods = related.job, related.livePods
	x := &decided{u: u, in: in, running: retry.RunningLog(in.Backup), fresh: fresh, related: related}
	if x.running && ask != nil {
		// A running log backup is only decided on with the cluster's account of its
		// task: its pause, and whether TiDB Operator's verdict on it is true.
		res, ok := ask(ctx, r.watchTarget(in.Backup))
		if !ok {
			return nil, nil
		}
		x.in.Kernel = &res
	}
	x.d = retry.Decide(x.in)
	if fresh && ask != nil {
		x.d = r.askKernel(ctx, &x.in, x.d, ask)
	}
	return x, nil
}

// DecideNow decides on a Backup as Reconcile's fresh phase does, reading everything
// through r.APIReader (for explain: the caller's credentials), and writes nothing. probe,
// if set, stands in for the kernel probe and is asked when Reconcile would ask its probe.
func (r *Reconciler) DecideNow(ctx context.Context, key types.NamespacedName, probe Probe) (retry.Input, retry.Decision, error) {
	var ask lookup
	if probe != nil {
		ask = func(ctx context.Context, t kernel.Target) (kernel.Result, bool) { return probe(ctx, t), true }
	}
	x, err := r.decide(ctx, r.APIReader, key, true, nil, ask)
	if err != nil {
		return retry.Input{}, retry.Decision{}, fmt.Errorf("backup %s: %w", key, err)
	}
	return x.in, x.d, nil
}

// Reconcile decides on cached data and, before acting, decides again on fresh data from
// the API server (reconcileFresh): a stale cache may never delete a new Job or record a
// failure twice. Recording a failure is the exception that skips the fresh read of the
// Backup (recordOnCached).
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := logf.FromContext(ctx)
	key := req.NamespacedName
	c, err := r.decide(ctx, r.Client, key, false, nil, r.kernelLookup())
	if c == nil && err == nil {
		return r.awaitKernel(), nil
	}
	if err != nil {
		return r.gone(key, err)
	}
	if c.in.Backup.Deleting {
		r.releaseKernel(key)
	}
	r.observeRunning(c.u, c.in, c.running)
	switch {
	case !c.d.Action.Acts():
		if r.Shadow {
			return r.shadow(c.u, c.d, false, c.running), nil
		}
		return r.act(ctx, log, c)
	case r.Shadow:
		// Decide on fresh data, as enforcing would, before saying what it would do.
		f, err := r.decide(ctx, r.APIReader, key, true, nil, r.kernelLookup())
		if f == nil && err == nil {
			return r.awaitKernel(), nil
		}
		if err != nil {
			return r.gone(key, err)
		}
		return r.shadow(f.u, f.d, f.d.Action.Acts(), f.running), nil
	}
	if res, blocked := r.guard(log, c); blocked {
		return res, nil
	}
	if c.d.Action == retry.ActRecordFailure {
		// The common write, recording a failure, goes out without re-reading the
		// Backup: see recordOnCached. A conflict falls through to the fresh phase.
		if done, err := r.recordOnCached(ctx, log, c.u, c.in, c.d); err != nil || done != nil {
			return ptr.Deref(done, reconcile.Result{}), err
		}
	}
	return r.reconcileFresh(ctx, log, key)
}

// reconcileFresh decides on the Backup as the API server has it and carries the decision
// out. Writes carry the resourceVersion that was read; a conflict means someone else
// wrote first, so the Backup is read again and the decision made again.
func (r *Reconciler) reconcileFresh(ctx context.Context, log logr.Logger, key types.NamespacedName) (reconcile.Result, error) {
	var related *relatedState
	for conflicts := 0; conflicts < maxConflicts; conflicts++ {
		f, err := r.decide(ctx, r.APIReader, key, true, related, r.kernelLookup())
		if f == nil && err == nil {
			return r.awaitKernel(), nil
		}
		if err != nil {
			return r.gone(key, err)
		}
		related = f.related
		res, err := r.act(ctx, log, f)
		if !apierrors.IsConflict(err) {
			return res, err
		}
		log.V(1).Info("Write conflict; reading again", "conflicts", conflicts+1)
	}
	log.V(1).Info("Still conflicting; trying again shortly", "conflicts", maxConflicts)
	return reconcile.Result{RequeueAfter: conflictRequeue + rand.N(conflictRequeue)}, nil
}

// act carries a decision out: waits are requeues, DeleteJob deletes the old Job, and a
// writing decision is applied to the Backup it was decided on and written with its
// resourceVersion (a conflict is returned as the API server's error).
func (r *Reconciler) act(ctx context.Context, log logr.Logger, x *decided) (reconcile.Result, error) {
	d, key := x.d, types.NamespacedName{Namespace: x.u.GetNamespace(), Name: x.u.GetName()}
	r.Metrics.setWaiting(key, d.Command, waits(d))
	log = log.WithValues("command", d.Command, "action", d.Action, "retryNum", d.RetryNum)
	switch {
	case d.Action == retry.ActDeleteJob:
		return reconcile.Result{RequeueAfter: d.RequeueAfter}, r.deleteJob(ctx, log, x.in.Job, key.Namespace)
	case !d.Action.Writes():
		if d.Action != retry.ActNone {
			log.V(1).Info("Waiting", "requeueAfter", d.RequeueAfter, "detail", d.Message)
		}
		return reconcile.Result{RequeueAfter: r.watchAgain(x.running, d.RequeueAfter)}, nil
	}
	if res, blocked := r.guard(log, x); blocked {
		return res, nil
	}
	// Only ever write an object read fresh from the API server: cached Backups are
	// stripped to what decisions read (cache.go), and writing one back would drop every
	// other field.
	if !x.fresh {
		return reconcile.Result{}, fmt.Errorf("refusing to write a cached copy of backup %s", key)
	}
	if err := retry.Apply(x.u, d, x.in.Now); err != nil {
		return reconcile.Result{}, fmt.Errorf("apply %s: %w", d.Action, err)
	}
	if err := r.Client.Update(ctx, x.u); err != nil {
		if apierrors.IsConflict(err) {
			return reconcile.Result{}, err
		}
		return reconcile.Result{}, fmt.Errorf("update backup: %w", err)
	}
	log.Info("Updated backup", "reason", d.Reason, "detail", d.Message)
	r.wrote(x.u, d, x.in.Now)
	return reconcile.Result{RequeueAfter: r.watchAgain(x.running, d.RequeueAfter)}, nil
}

// guard asks the write guard about a decision that acts; blocked: it is suspended.
func (r *Reconciler) guard(log logr.Logger, x *decided) (reconcile.Result, bool) {
	if !x.d.Action.Writes() {
		return reconcile.Result{}, false
	}
	key := types.NamespacedName{Namespace: x.u.GetNamespace(), Name: x.u.GetName()}
	until, tripped, blocked := r.Guard.Check(key, x.in.Now)
	if !blocked {
		return reconcile.Result{}, false
	}
	if tripped {
		r.writesSuspended(log, x.u, x.d, until)
	}
	return reconcile.Result{RequeueAfter: until.Sub(x.in.Now)}, true
}

// wrote accounts for a written decision: the write guard, the metrics, the Event.
func (r *Reconciler) wrote(u *unstructured.Unstructured, d retry.Decision, now time.Time) {
	key := types.NamespacedName{Namespace: u.GetNamespace(), Name: u.GetName()}
	r.Guard.Wrote(key, now)
	r.Metrics.setWaiting(key, d.Command, waits(d))
	r.Metrics.written(u.GetNamespace(), d)
	r.event(u, d)
}

// gone ends a reconcile that could not decide: a Backup that is gone is forgotten
// everywhere, any other error is retried.
func (r *Reconciler) gone(key types.NamespacedName, err error) (reconcile.Result, error) {
	if !apierrors.IsNotFound(err) {
		return reconcile.Result{}, err
	}
	r.Metrics.setWaiting(key, "", false)
	r.forgetRunning(key)
	r.releaseKernel(key)
	r.Guard.Forget(key)
	r.shadowed.Delete(key)
	return reconcile.Result{}, nil
}

// awaitKernel is the requeue of a running log backup whose kernel reading is not in yet
// (its arrival enqueues the Backup sooner).
func (r *Reconciler) awaitKernel() reconcile.Result {
	return reconcile.Result{RequeueAfter: r.Kernel.Timeout() + time.Second}
}

// recordOnCached records a failure decided on the cached Backup with one merge patch that
// carries the cached resourceVersion, instead of re-reading the Backup first. The
// precondition makes that as safe as a fresh read: the patch applies only if the Backup
// is still the one decided on, and a conflict (a stale cache, or another writer) sends
// the reconcile to the fresh path. The Job, which the decision may rest on (a pod death),
// is read fresh first: a cached Job could be one a retry already replaced. The patch
// holds only owned fields, the episode annotation and status.backoffRetryStatus (kept whole
// by the cache transform), so nothing else in the object can be lost. It saves one GET
// per recorded failure (docs/benchmarks.md).
// It returns nil when it did not write.
func (r *Reconciler) recordOnCached(ctx context.Context, log logr.Logger, cached *unstructured.Unstructured, in retry.Input, d retry.Decision) (*reconcile.Result, error) {
	if in.Job != nil {
		rel, err := r.observeRelated(ctx, r.APIReader, in.Backup, false)
		if err != nil {
			return nil, err
		}
		in.Job, in.LivePods = rel.job, nil
		if d = retry.Decide(in); d.Action != retry.ActRecordFailure {
			return nil, nil // the fresh Job changed the decision: take the fresh path
		}
	}
	patch, err := retry.RecordPatch(cached, d, in.Now)
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", d.Action, err)
	}
	target := &unstructured.Unstructured{}
	target.SetGroupVersionKind(defaults.BackupGVK)
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
	r.wrote(cached, d, in.Now)
	return &reconcile.Result{RequeueAfter: d.RequeueAfter}, nil
}

// watchAttempt names the kernel probe's periodic reading of a running task (results are
// reused for the probe's cache TTL).
const watchAttempt = "watch"

func (r *Reconciler) watchTarget(b *retry.BackupView) kernel.Target {
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
func (r *Reconciler) observeRunning(u *unstructured.Unstructured, in retry.Input, running bool) {
	key := types.NamespacedName{Namespace: u.GetNamespace(), Name: u.GetName()}
	if !running {
		r.forgetRunning(key)
		return
	}
	sig, _ := retry.PauseOf(in)
	// Only a reading of both sets the gauge; a reconcile without one (the probe is off,
	// or has not answered) leaves the last value, so that the series does not flap.
	if k := in.Kernel; k != nil && k.Err == nil && k.Task != nil && k.Task.Exists && k.Task.GCSafePoint > 0 && k.Task.CheckpointTS > 0 {
		r.Metrics.setGCPassed(key, k.Task.GCPassedCheckpoint())
	}
	at, known := retry.CheckpointTime(in)
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
	detail := fmt.Sprintf("checkpoint %s, lag %s (warning at %s)", retry.RFC3339(at),
		defaults.FormatDuration(lag.Round(time.Second)), defaults.FormatDuration(limit))
	if sig != nil {
		detail += "; paused by an error, reported by " + sig.Source + ": " + sig.Message
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

// askKernel asks the kernel about a due retry and decides again with its answer. Only on
// fresh reads: the old Job and its pods were then seen gone on the API server itself, so
// nothing can still register the task, and the answer (reused only for this attempt)
// reflects the cluster after the failed run. Until it answers, the decision is to wait.
func (r *Reconciler) askKernel(ctx context.Context, in *retry.Input, d retry.Decision, ask lookup) retry.Decision {
	if d.Action != retry.ActStartRetry {
		return d
	}
	b := in.Backup
	recs := retry.EpisodeRecords(b.Records)
	last := recs[len(recs)-1] // StartRetry is only decided on a pending record
	t := r.watchTarget(b)
	t.Attempt = strconv.FormatInt(last.RetryNum, 10) + "@" + retry.RFC3339(last.DetectFailedAt)
	res, ok := ask(ctx, t)
	if !ok {
		// The answer enqueues the Backup; the requeue is the fallback should it be lost.
		return retry.Decision{Action: retry.ActAwaitKernel, Command: d.Command, RetryNum: d.RetryNum, RequeueAfter: r.Kernel.Timeout() + time.Second,
			Message: "reading the log backup task from PD before the retry"}
	}
	in.Kernel = &res
	return retry.Decide(*in)
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
	job      *retry.JobView
	livePods []string
}

// observeRelated reads the current command's Job and, on fresh reads, the pods of that
// Job that still run: the cache holds no Pods, and they matter only just before a retry
// starts, which always follows a fresh read.
func (r *Reconciler) observeRelated(ctx context.Context, reader client.Reader, b *retry.BackupView, fresh bool) (*relatedState, error) {
	rs := &relatedState{command: retry.CurrentCommand(b)}
	if b.Mode != "log" || b.Deleting || rs.command == "" {
		return rs, nil
	}
	jobName := retry.JobName(b.Name, rs.command)
	job := &batchv1.Job{}
	err := reader.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: jobName}, job)
	switch {
	case err == nil:
		rs.job = retry.ViewJob(job, b.UID)
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
			if !seen[p.UID] && !retry.PodTerminated(p) {
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
func (r *Reconciler) deleteJob(ctx context.Context, log logr.Logger, j *retry.JobView, namespace string) error {
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
func (r *Reconciler) writesSuspended(log logr.Logger, u *unstructured.Unstructured, d retry.Decision, until time.Time) {
	msg := fmt.Sprintf("written more than %d times within %s: writes suspended until %s, the last decision (%s %s) "+
		"was not written; this is a bug or a fight with another controller, please report it",
		r.Guard.Limit, defaults.FormatDuration(r.Guard.Window), retry.RFC3339(until), d.Action, d.Reason)
	log.Error(nil, "Writes suspended: the backup is written too often", "action", d.Action, "reason", d.Reason, "until", until)
	r.Metrics.suspended(u.GetNamespace())
	if r.Recorder != nil {
		r.Recorder.Eventf(u, nil, corev1.EventTypeWarning, ReasonWritesSuspended, string(d.Action), "%s", msg)
	}
}

// event reports a written decision on the Backup.
func (r *Reconciler) event(u *unstructured.Unstructured, d retry.Decision) {
	if r.Recorder == nil {
		return
	}
	eventType := corev1.EventTypeNormal // RetryStarted, RetrySucceeded, RecoveredFromKernel, ...
	switch d.Reason {
	case retry.ReasonRetryScheduled, retry.ReasonRetryExhausted, retry.ReasonRetrySkipped:
		eventType = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(u, nil, eventType, d.Reason, string(d.Action), "%s", d.Message)
}

// SetupWithManager registers the controller: log Backups, and the Jobs they control.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	backup := &unstructured.Unstructured{}
	backup.SetGroupVersionKind(defaults.BackupGVK)
	isLog := predicate.NewPredicateFuncs(func(o client.Object) bool {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			return false
		}
		mode, _, _ := unstructured.NestedString(u.Object, "spec", "backupMode")
		return mode == defaults.BackupModeLog
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
