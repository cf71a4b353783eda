package testenv

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/etcdtest"
)

// Outcome is how one run of a log-start Job ends in a Cluster script.
type Outcome string

// Outcomes of a run.
const (
	// Succeed: BR succeeds; the entry says Complete and status.commitTs is set.
	Succeed Outcome = "succeed"
	// BRError: BR fails; the backup-manager writes Failed, then the Job fails.
	BRError Outcome = "br-error"
	// PodDeath: the pod dies; the Job fails and nobody writes the Backup.
	PodDeath Outcome = "pod-death"
	// BRTaskExists: BR refuses log start because the task exists (a re-run of a
	// log-start whose task was registered); the backup-manager writes Failed.
	BRTaskExists Outcome = "br-task-exists"
	// CommitThenPodDeath: BR registered the task and the backup-manager wrote
	// status.commitTs, then the pod died before the entry said Complete; the Job fails.
	CommitThenPodDeath Outcome = "commit-then-pod-death"
	// BRCredentialsExpired: the storage refuses BR's credentials (an expired STS token);
	// the backup-manager writes Failed.
	BRCredentialsExpired Outcome = "br-credentials-expired"
)

// Cluster plays, for log-start commands in one namespace, what a real cluster has and
// envtest lacks, beside TiDB Operator's real controller-manager (StartTiDBOperator),
// which creates the Jobs, writes Scheduled and re-runs a command handed back as
// RetryFailed:
//   - the pod: the scripted outcome of each run, as the backup-manager writes it into the
//     Backup, and, on success, BR registering the task in PD;
//   - the Job controller: the finished Job's status;
//   - the garbage collector: foreground deletion of Jobs (delete their pods, then drop
//     the foregroundDeletion finalizer).
//
// Its writes carry resourceVersions, like the real ones. With PlaysTiDBOperator it also
// plays TiDB Operator's backup controller, for where the real one cannot run (make demo
// without root): a Job per run, and on RetryFailed the finished old Job deleted and a new
// one created once it is gone.
type Cluster struct {
	Client    client.Client
	Namespace string
	// PlaysTiDBOperator: create and re-run the Jobs too (no real controller-manager).
	PlaysTiDBOperator bool
	// PD, if set, is the cluster's PD (an etcdtest): a log-start that succeeds registers
	// its task there, as BR does, so TiDB Operator's tracker finds it.
	PD *clientv3.Client

	// Advance: while a task registered in PD is not paused, the log backup advancer
	// moves its global checkpoint to now, every second (resume.go). Set before Run, or
	// with SetAdvance.
	Advance bool

	mu      sync.Mutex
	scripts map[string][]Outcome
	runs    map[string]int
	jobs    map[types.UID]bool // the Jobs seen (TiDB Operator's)
	resumes map[string][]ResumeOutcome
	resumed map[string]int
	broken  map[string]bool // tasks whose checkpoint cannot move (their error persists)
	lastAdv time.Time
}

// NewCluster returns a Cluster for a namespace.
func NewCluster(c client.Client, namespace string) *Cluster {
	return &Cluster{Client: c, Namespace: namespace, scripts: map[string][]Outcome{}, runs: map[string]int{}, jobs: map[types.UID]bool{},
		resumes: map[string][]ResumeOutcome{}, resumed: map[string]int{}, broken: map[string]bool{}}
}

// Script sets how the next runs of a Backup's log-start end; runs beyond the script keep
// running.
func (f *Cluster) Script(backup string, outcomes ...Outcome) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scripts[backup] = append(f.scripts[backup], outcomes...)
}

// Runs is how many log-start Jobs the operator created for a Backup.
func (f *Cluster) Runs(backup string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runs[backup]
}

const logStart = "log-start"

// startTS is the start ts BR gives a log backup task it registers now: PD's current TSO,
// so that the task's checkpoint (its start ts, until it advances) is a time of this run
// and its lag is seconds. A fixed old start ts made a running task three years behind,
// and a reconciler that looked at it before the story set its checkpoint reported that.
func startTS() uint64 { return kernel.TSO(time.Now()) }

// JobName is TiDB Operator's Job name for a Backup's log-start.
func JobName(backup string) string { return "backup-" + backup + "-" + logStart }

// Start creates a log Backup. With PlaysTiDBOperator it also does what TiDB Operator's
// first sync does: the log-start Job created and its entry Scheduled.
func (f *Cluster) Start(ctx context.Context, backup *unstructured.Unstructured) error {
	backup.SetNamespace(f.Namespace)
	if err := f.Client.Create(ctx, backup); err != nil {
		return fmt.Errorf("create backup: %w", err)
	}
	if !f.PlaysTiDBOperator {
		return nil
	}
	return f.runJob(ctx, backup.GetName())
}

// Run drives the cluster until ctx is done.
func (f *Cluster) Run(ctx context.Context) {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// Errors are conflicts or races with the reconciler: the next tick retries.
		_ = f.collectGarbage(ctx)
		_ = f.syncBackups(ctx)
		_ = f.advance(ctx)
	}
}

// collectGarbage finishes foreground deletions, as kube-controller-manager's GC does.
func (f *Cluster) collectGarbage(ctx context.Context) error {
	jobs := &batchv1.JobList{}
	if err := f.Client.List(ctx, jobs, client.InNamespace(f.Namespace)); err != nil {
		return err
	}
	for i := range jobs.Items {
		j := &jobs.Items[i]
		if j.DeletionTimestamp == nil || !slices.Contains(j.Finalizers, metav1.FinalizerDeleteDependents) {
			continue
		}
		pods := &corev1.PodList{}
		if err := f.Client.List(ctx, pods, client.InNamespace(f.Namespace), client.MatchingLabels{batchv1.JobNameLabel: j.Name}); err != nil {
			return err
		}
		for k := range pods.Items {
			if metav1.IsControlledBy(&pods.Items[k], j) {
				if err := client.IgnoreNotFound(f.Client.Delete(ctx, &pods.Items[k])); err != nil {
					return err
				}
			}
		}
		j.Finalizers = slices.DeleteFunc(j.Finalizers, func(s string) bool { return s == metav1.FinalizerDeleteDependents })
		if err := f.Client.Update(ctx, j); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

func (f *Cluster) syncBackups(ctx context.Context) error {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(BackupGVK.GroupVersion().WithKind("BackupList"))
	if err := f.Client.List(ctx, list, client.InNamespace(f.Namespace)); err != nil {
		return err
	}
	for i := range list.Items {
		b := &list.Items[i]
		if err := f.syncBackup(ctx, b); err != nil {
			return err
		}
		if err := f.syncResume(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

func (f *Cluster) syncBackup(ctx context.Context, b *unstructured.Unstructured) error {
	name := b.GetName()
	phase, _, _ := unstructured.NestedString(b.Object, "status", "logSubCommandStatuses", logStart, "phase")
	job := &batchv1.Job{}
	err := f.Client.Get(ctx, client.ObjectKey{Namespace: f.Namespace, Name: JobName(name)}, job)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	exists := err == nil
	if !f.PlaysTiDBOperator && exists {
		f.mu.Lock()
		if !f.jobs[job.UID] {
			f.jobs[job.UID] = true
			f.runs[name]++
		}
		f.mu.Unlock()
	}
	running := exists && job.DeletionTimestamp == nil && !finished(job)
	switch {
	case !f.PlaysTiDBOperator && phase == "RetryFailed" && running && entryReason(b, "RetryFailed") == "CreateBackupJobFailed":
		// TiDB Operator raced itself: a second sync tried to create the Job its first had
		// just created, and wrote RetryFailed over Scheduled. The pod of the first runs on.
		return f.playScript(ctx, name, job)
	case !f.PlaysTiDBOperator && phase == "RetryFailed":
		// TiDB Operator's part.
	case phase == "RetryFailed" && exists:
		// TiDB Operator deletes a finished old Job itself; a running one blocks.
		if job.DeletionTimestamp == nil && finished(job) {
			return client.IgnoreNotFound(f.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationForeground)))
		}
	case phase == "RetryFailed":
		return f.runJob(ctx, name)
	case phase == "Scheduled" && running:
		return f.playScript(ctx, name, job)
	}
	return nil
}

// playScript ends the running Job's run with the next scripted outcome. The outcome
// leaves the script only once it is applied: a run whose writes lost to other writers is
// ended again on the next tick, not skipped.
func (f *Cluster) playScript(ctx context.Context, name string, job *batchv1.Job) error {
	f.mu.Lock()
	script := f.scripts[name]
	f.mu.Unlock()
	if len(script) == 0 {
		return nil
	}
	if err := f.finish(ctx, name, job, script[0]); err != nil {
		return err
	}
	f.mu.Lock()
	f.scripts[name] = f.scripts[name][1:]
	f.mu.Unlock()
	return nil
}

// entryReason is the reason of the log-start entry's condition of a type.
func entryReason(b *unstructured.Unstructured, condType string) string {
	conds, _, _ := unstructured.NestedSlice(b.Object, "status", "logSubCommandStatuses", logStart, "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == condType {
			r, _ := m["reason"].(string)
			return r
		}
	}
	return ""
}

// runJob creates the log-start Job and writes the entry Scheduled, as TiDB Operator does.
func (f *Cluster) runJob(ctx context.Context, backup string) error {
	b := Empty(BackupGVK)
	if err := f.Client.Get(ctx, client.ObjectKey{Namespace: f.Namespace, Name: backup}, b); err != nil {
		return err
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: JobName(backup), Namespace: f.Namespace,
			Labels: map[string]string{
				"app.kubernetes.io/name": "backup", "app.kubernetes.io/component": "backup",
				"app.kubernetes.io/managed-by": "backup-operator", "app.kubernetes.io/instance": "basic",
				"tidb.pingcap.com/backup": backup,
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: BackupGVK.GroupVersion().String(), Kind: BackupGVK.Kind, Name: backup, UID: b.GetUID(),
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "backup", Image: "pingcap/br:v8.5.0"}},
			}},
		},
	}
	if err := f.Client.Create(ctx, job); err != nil {
		return fmt.Errorf("create job: %w", err)
	}
	f.mu.Lock()
	f.runs[backup]++
	f.mu.Unlock()
	return f.UpdateBackup(ctx, backup, func(o map[string]any) {
		setEntry(o, "Scheduled", nil)
		_ = unstructured.SetNestedField(o, "Scheduled", "status", "phase")
	})
}

// finish ends a run with an outcome: the backup-manager's writes, then the Job's status.
func (f *Cluster) finish(ctx context.Context, backup string, job *batchv1.Job, outcome Outcome) error {
	var err error
	switch outcome {
	case Succeed:
		ts := startTS()
		if err := f.registerTask(ctx, backup, ts); err != nil {
			return err
		}
		err = f.UpdateBackup(ctx, backup, func(o map[string]any) {
			setEntry(o, "Complete", nil)
			_ = unstructured.SetNestedField(o, "Running", "status", "phase")
			_ = unstructured.SetNestedField(o, strconv.FormatUint(ts, 10), "status", "commitTs")
		})
	case BRError:
		err = f.UpdateBackup(ctx, backup, brFailed("[BR:Common:ErrFailedToConnect] failed to connect to PD"))
	case BRTaskExists:
		err = f.UpdateBackup(ctx, backup, brFailed("[BR:Stream:ErrStreamLogTaskExist]stream task already exists"))
	case BRCredentialsExpired:
		err = f.UpdateBackup(ctx, backup, brFailed("[BR:ExternalStorage:ErrStorageUnknown]operation error S3: PutObject, "+
			"https response error StatusCode: 400, api error ExpiredToken: The provided token has expired."))
	case PodDeath:
		err = f.UpdateBackup(ctx, backup, func(o map[string]any) {
			setEntry(o, "Running", nil)
			_ = unstructured.SetNestedField(o, "Running", "status", "phase")
		})
	case CommitThenPodDeath:
		ts := startTS()
		if err := f.registerTask(ctx, backup, ts); err != nil {
			return err
		}
		err = f.UpdateBackup(ctx, backup, func(o map[string]any) {
			setEntry(o, "Running", nil)
			_ = unstructured.SetNestedField(o, "Running", "status", "phase")
			_ = unstructured.SetNestedField(o, strconv.FormatUint(ts, 10), "status", "commitTs")
		})
	}
	if err != nil {
		return err
	}
	// Then the Job's status, as the Job controller would write it; re-read on conflict
	// (the reconciler may be deleting it), and a Job already gone needs nothing.
	return retry.RetryOnConflict(conflictBackoff, func() error {
		j := &batchv1.Job{}
		if err := f.Client.Get(ctx, client.ObjectKeyFromObject(job), j); err != nil {
			return client.IgnoreNotFound(err)
		}
		setJobOutcome(j, outcome == Succeed)
		return client.IgnoreNotFound(f.Client.Status().Update(ctx, j))
	})
}

// registerTask is BR registering a log-start's task in PD (when the Cluster has one), as it
// does before the backup-manager reports success.
func (f *Cluster) registerTask(ctx context.Context, backup string, startTS uint64) error {
	if f.PD == nil {
		return nil
	}
	if err := etcdtest.PutTask(ctx, f.PD, backup, startTS); err != nil {
		return fmt.Errorf("register task %s in PD: %w", backup, err)
	}
	return nil
}

// brFailed is the backup-manager's write when BR's log start fails with message.
func brFailed(message string) func(map[string]any) {
	return func(o map[string]any) {
		setEntry(o, "Failed", map[string]any{"type": "Failed", "status": "True", "reason": "LogBackupStartFailed",
			"message": "run br log start failed: " + message})
		_ = unstructured.SetNestedField(o, "Failed", "status", "phase")
	}
}

// setJobOutcome writes a finished Job's status with the conditions the API server
// requires (SuccessCriteriaMet before Complete, FailureTarget before Failed).
func setJobOutcome(job *batchv1.Job, succeeded bool) {
	now := metav1.Now()
	job.Status.StartTime = &now
	if succeeded {
		job.Status.Succeeded, job.Status.CompletionTime = 1, &now
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now},
		}
		return
	}
	job.Status.Failed = 1
	msg := "Job has reached the specified backoff limit"
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: msg, LastTransitionTime: now, LastProbeTime: now},
		{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: msg, LastTransitionTime: now, LastProbeTime: now},
	}
}

// conflictBackoff retries a write for about a second: tests hammer the same Backup.
var conflictBackoff = wait.Backoff{Steps: 40, Duration: 5 * time.Millisecond, Factor: 1.1, Jitter: 0.5}

// UpdateBackup reads the Backup, changes it, and writes it with its resourceVersion,
// again on conflict: the way TiDB Operator and the backup-manager write.
func (f *Cluster) UpdateBackup(ctx context.Context, name string, change func(map[string]any)) error {
	return retry.RetryOnConflict(conflictBackoff, func() error {
		b := Empty(BackupGVK)
		if err := f.Client.Get(ctx, client.ObjectKey{Namespace: f.Namespace, Name: name}, b); err != nil {
			return err
		}
		change(b.Object)
		return f.Client.Update(ctx, b)
	})
}

// setEntry writes the log-start entry's phase (and a condition of the phase's type).
func setEntry(o map[string]any, phase string, cond map[string]any) {
	setCommandEntry(o, logStart, phase, cond)
}

// setCommandEntry writes a command entry's phase (and a condition of the phase's type).
func setCommandEntry(o map[string]any, cmd, phase string, cond map[string]any) {
	entry, _, _ := unstructured.NestedMap(o, "status", "logSubCommandStatuses", cmd)
	if entry == nil {
		entry = map[string]any{"command": cmd}
	}
	entry["phase"] = phase
	if cond == nil {
		cond = map[string]any{"type": phase, "status": "True"}
	}
	cond["command"] = cmd
	cond["lastTransitionTime"] = time.Now().UTC().Format(time.RFC3339)
	conds, _, _ := unstructured.NestedSlice(entry, "conditions")
	conds = slices.DeleteFunc(conds, func(c any) bool { m, _ := c.(map[string]any); return m["type"] == cond["type"] })
	entry["conditions"] = append(conds, cond)
	_ = unstructured.SetNestedMap(o, entry, "status", "logSubCommandStatuses", cmd)
}

func finished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// WriteOperatorRecord writes what a TiDB Operator newer than the ones served here writes
// about a running log backup (tidb-operator#6950: LogBackupStateQueryFailed): the log-start
// entry and status.phase set to phase, with a condition of that type, reason and message,
// the way its status updater writes them (read, change, update with the resourceVersion).
func (f *Cluster) WriteOperatorRecord(ctx context.Context, name, phase, reason, message string) error {
	return f.UpdateBackup(ctx, name, func(o map[string]any) {
		setEntry(o, phase, map[string]any{"type": phase, "status": "True", "reason": reason, "message": message})
		_ = unstructured.SetNestedField(o, phase, "status", "phase")
	})
}
