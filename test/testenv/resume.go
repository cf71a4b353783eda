package testenv

import (
	"context"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/etcdtest"
)

// ResumeOutcome is how one run of a log-resume Job ends in a Cluster script.
type ResumeOutcome string

// Outcomes of a log-resume run (runs beyond the script succeed).
const (
	// Resumed: BR resumes the task (deletes its pause key); the backup-manager writes
	// log-resume Complete, and TiDB Operator's status updater turns that into
	// status.phase Running.
	Resumed ResumeOutcome = "resumed"
	// ResumedThenPausedAgain: as Resumed, and two seconds later TiKV pauses the task
	// again on the same error (storage still full); meanwhile its checkpoint cannot move,
	// nothing being flushed (until a run ends Resumed).
	ResumedThenPausedAgain ResumeOutcome = "resumed-then-paused-again"
	// ResumeRefusedByGC: BR refuses the resume, the GC safe point having passed the
	// task's checkpoint; the backup-manager writes log-resume Failed.
	ResumeRefusedByGC ResumeOutcome = "resume-refused-by-gc"
)

const logResume = "log-resume"

// ScriptResume sets how the next log-resume runs of a Backup end.
func (f *Cluster) ScriptResume(backup string, outcomes ...ResumeOutcome) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resumes[backup] = append(f.resumes[backup], outcomes...)
}

// Resumes is how many log-resume runs of a Backup ended.
func (f *Cluster) Resumes(backup string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.resumed[backup]
}

// syncResume ends a log-resume Job that TiDB Operator created and scheduled, as the pod
// would: BR's effect in PD, the backup-manager's write, then the Job's status.
func (f *Cluster) syncResume(ctx context.Context, b *unstructured.Unstructured) error {
	name := b.GetName()
	phase, _, _ := unstructured.NestedString(b.Object, "status", "logSubCommandStatuses", logResume, "phase")
	if phase != "Scheduled" && phase != "Running" {
		return nil
	}
	job := &batchv1.Job{}
	if err := f.Client.Get(ctx, client.ObjectKey{Namespace: f.Namespace, Name: "backup-" + name + "-" + logResume}, job); err != nil {
		return client.IgnoreNotFound(err)
	}
	if job.DeletionTimestamp != nil || finished(job) {
		return nil
	}
	f.mu.Lock()
	outcome := Resumed
	if script := f.resumes[name]; len(script) > 0 {
		outcome = script[0]
	}
	f.mu.Unlock()
	ok := outcome != ResumeRefusedByGC
	var err error
	if ok {
		if f.PD != nil {
			if err := etcdtest.ResumeTask(ctx, f.PD, name); err != nil {
				return fmt.Errorf("resume task %s in PD: %w", name, err)
			}
		}
		err = f.UpdateBackup(ctx, name, func(o map[string]any) {
			setCommandEntry(o, logResume, "Complete", nil)
			setStatusCondition(o, "Running")
		})
	} else {
		err = f.UpdateBackup(ctx, name, func(o map[string]any) {
			setCommandEntry(o, logResume, "Failed", map[string]any{"type": "Failed", "status": "True", "reason": "LogResumeFailed",
				"message": "run br log resume failed: [BR:Backup:ErrBackupGCSafepointExceeded]GC safepoint 449532234876551170 exceed TS 449532234876551000"})
		})
	}
	if err != nil {
		return err
	}
	f.mu.Lock()
	if len(f.resumes[name]) > 0 {
		f.resumes[name] = f.resumes[name][1:]
	}
	f.resumed[name]++
	f.broken[name] = outcome == ResumedThenPausedAgain
	f.mu.Unlock()
	if outcome == ResumedThenPausedAgain && f.PD != nil {
		go func() {
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
				_ = etcdtest.PauseByError(ctx, f.PD, name, 4, "KV:LogBackup:Io", "disk full on /var/lib/tikv (still)")
			}
		}()
	}
	return retry.RetryOnConflict(conflictBackoff, func() error {
		j := &batchv1.Job{}
		if err := f.Client.Get(ctx, client.ObjectKeyFromObject(job), j); err != nil {
			return client.IgnoreNotFound(err)
		}
		setJobOutcome(j, ok)
		if err := f.Client.Status().Update(ctx, j); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return nil
	})
}

// SetAdvance turns the log backup advancer on or off while the Cluster runs.
func (f *Cluster) SetAdvance(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Advance = on
}

// advance is the log backup advancer: every second, each task in PD that is not paused
// (and whose storage works) gets its global checkpoint moved to now.
func (f *Cluster) advance(ctx context.Context) error {
	f.mu.Lock()
	on := f.Advance
	f.mu.Unlock()
	if !on || f.PD == nil || time.Since(f.lastAdv) < time.Second {
		return nil
	}
	f.lastAdv = time.Now()
	const infoPrefix = "/tidb/br-stream/info/"
	infos, err := f.PD.Get(ctx, infoPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return err
	}
	for _, kv := range infos.Kvs {
		task := strings.TrimPrefix(string(kv.Key), infoPrefix)
		paused, err := f.PD.Get(ctx, "/tidb/br-stream/pause/"+task, clientv3.WithCountOnly())
		if err != nil {
			return err
		}
		f.mu.Lock()
		broken := f.broken[task]
		f.mu.Unlock()
		if paused.Count == 0 && !broken {
			if err := etcdtest.PutGlobalCheckpoint(ctx, f.PD, task, kernel.TSO(time.Now())); err != nil {
				return err
			}
		}
	}
	return nil
}

// setStatusCondition sets status.phase and the status condition of that type, as TiDB
// Operator's status updater does (UpdateBackupCondition: a new phase renews the
// condition's time).
func setStatusCondition(o map[string]any, phase string) {
	_ = unstructured.SetNestedField(o, phase, "status", "phase")
	conds, _, _ := unstructured.NestedSlice(o, "status", "conditions")
	cond := map[string]any{"type": phase, "status": "True", "lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}
	for i, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == phase {
			conds[i] = cond
			_ = unstructured.SetNestedSlice(o, conds, "status", "conditions")
			return
		}
	}
	_ = unstructured.SetNestedSlice(o, append(conds, cond), "status", "conditions")
}
