package reconciler

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
)

// Decisions on a stripped, cached object are the decisions on the full one.
func TestStrippedObjectsDecideAlike(t *testing.T) {
	withConditions := rich()
	conds, _, _ := unstructured.NestedSlice(withConditions.Object, "status", "logSubCommandStatuses", CmdStart, "conditions")
	conds = append([]any{map[string]any{"type": "Scheduled", "status": "True", "message": "a long message nobody reads"}}, conds...)
	require.NoError(t, unstructured.SetNestedSlice(withConditions.Object, conds, "status", "logSubCommandStatuses", CmdStart, "conditions"))
	backups := []*unstructured.Unstructured{
		rich(),
		withConditions,
		obj(entry(CmdStart, PhaseFailed), episode(CmdStart, false), records(rec(1, 0, 30*time.Second, false)),
			set("spec.logTruncateUntil", "5"), set("status.commitTs", "4"), set("spec.logSubcommand", CmdPause)),
		obj(entry(CmdStart, PhaseRunning), set("metadata.deletionTimestamp", rfc3339(t0)), set("spec.backoffRetryPolicy", map[string]any{"minRetryDuration": "30"})),
		// The opt-out annotation decides how the CRD's snapshot defaults read.
		obj(entry(CmdStart, PhaseFailed), set("spec.backoffRetryPolicy", map[string]any{"minRetryDuration": "300s", "maxRetryTimes": int64(2), "retryTimeout": "30m"}),
			set("metadata.annotations", map[string]any{"tidb-backup-guard.io/keep-schema-defaults": "true", "other": "dropped"})),
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "backup-pitr-log-start", UID: "job-uid", Labels: map[string]string{"a": "b"},
			OwnerReferences: []metav1.OwnerReference{{UID: "backup-uid", Controller: ptr.To(true)}}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "x"}}},
		Spec:   batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}},
		Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded"}}},
	}
	strippedJob, err := StripJob(job)
	require.NoError(t, err)
	assert.Empty(t, strippedJob.(*batchv1.Job).Spec.Template.Spec.Containers, "the pod template is gone")
	assert.Empty(t, strippedJob.(*batchv1.Job).Labels, "labels only served the cache's selector")
	for i, b := range backups {
		s, err := StripBackup(b)
		require.NoError(t, err)
		su := s.(*unstructured.Unstructured)
		assert.Equal(t, viewBackup(b), viewBackup(su), "backup %d", i)
		assert.Equal(t, viewJob(job, b.GetUID()), viewJob(strippedJob.(*batchv1.Job), su.GetUID()))
		for _, now := range []time.Duration{0, time.Minute, time.Hour} {
			in := func(x *unstructured.Unstructured, j *batchv1.Job) Input {
				return Input{Now: t0.Add(now), Backup: viewBackup(x), Job: viewJob(j, x.GetUID())}
			}
			assert.Equal(t, Decide(in(b, job)), Decide(in(su, strippedJob.(*batchv1.Job))))
		}
		_, hasSpecS3 := su.Object["spec"].(map[string]any)["s3"]
		assert.False(t, hasSpecS3, "fields decisions do not read are dropped")
		_, hasTimeStarted, _ := unstructured.NestedFieldNoCopy(su.Object, "status", "logSubCommandStatuses", CmdStart, "timeStarted")
		assert.False(t, hasTimeStarted, "of a command entry, only the phase and the Failed condition are kept")
	}
}
