package reconciler

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry/retrytest"
)

// Decisions on a stripped, cached object are the decisions on the full one.
func TestStrippedObjectsDecideAlike(t *testing.T) {
	withConditions := retrytest.Rich()
	conds, _, _ := unstructured.NestedSlice(withConditions.Object, "status", "logSubCommandStatuses", retry.CmdStart, "conditions")
	conds = append([]any{map[string]any{"type": "Scheduled", "status": "True", "message": "a long message nobody reads"}}, conds...)
	require.NoError(t, unstructured.SetNestedSlice(withConditions.Object, conds, "status", "logSubCommandStatuses", retry.CmdStart, "conditions"))
	backups := []*unstructured.Unstructured{
		retrytest.Rich(),
		withConditions,
		retrytest.Obj(retrytest.Entry(retry.CmdStart, retry.PhaseFailed), retrytest.Episode(retry.CmdStart, false), retrytest.Records(retrytest.Rec(1, 0, 30*time.Second, false)),
			retrytest.Set("spec.logTruncateUntil", "5"), retrytest.Set("status.commitTs", "4"), retrytest.Set("spec.logSubcommand", retry.CmdPause)),
		retrytest.Obj(retrytest.Entry(retry.CmdStart, retry.PhaseRunning), retrytest.Set("metadata.deletionTimestamp", retry.RFC3339(retrytest.T0)), retrytest.Set("spec.backoffRetryPolicy", map[string]any{"minRetryDuration": "30"})),
		// The opt-out annotation decides how the CRD's snapshot defaults read.
		retrytest.Obj(retrytest.Entry(retry.CmdStart, retry.PhaseFailed), retrytest.Set("spec.backoffRetryPolicy", map[string]any{"minRetryDuration": "300s", "maxRetryTimes": int64(2), "retryTimeout": "30m"}),
			retrytest.Set("metadata.annotations", map[string]any{"tidb-backup-guard.io/keep-schema-defaults": "true", "other": "dropped"})),
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
		assert.Equal(t, retry.ViewBackup(b), retry.ViewBackup(su), "backup %d", i)
		assert.Equal(t, retry.ViewJob(job, b.GetUID()), retry.ViewJob(strippedJob.(*batchv1.Job), su.GetUID()))
		for _, now := range []time.Duration{0, time.Minute, time.Hour} {
			in := func(x *unstructured.Unstructured, j *batchv1.Job) retry.Input {
				return retry.Input{Now: retrytest.T0.Add(now), Backup: retry.ViewBackup(x), Job: retry.ViewJob(j, x.GetUID())}
			}
			assert.Equal(t, retry.Decide(in(b, job)), retry.Decide(in(su, strippedJob.(*batchv1.Job))))
		}
		_, hasSpecS3 := su.Object["spec"].(map[string]any)["s3"]
		assert.False(t, hasSpecS3, "fields decisions do not read are dropped")
		_, hasTimeStarted, _ := unstructured.NestedFieldNoCopy(su.Object, "status", "logSubCommandStatuses", retry.CmdStart, "timeStarted")
		assert.False(t, hasTimeStarted, "of a command entry, only the phase and the Failed condition are kept")
	}
}

func TestRecordPatchHoldsOnlyOwnedFields(t *testing.T) {
	cached, err := StripBackup(retrytest.Rich())
	require.NoError(t, err)
	u := cached.(*unstructured.Unstructured)
	u.SetResourceVersion("42")
	retrytest.Records(retrytest.Rec(1, 0, 30*time.Second, true))(u)
	before := u.DeepCopy()
	now := retrytest.T0.Add(time.Minute)
	d := retry.Decision{Action: retry.ActRecordFailure, Command: retry.CmdStart, Record: &retry.Record{RetryNum: 2, DetectFailedAt: now, ExpectedRetryAt: &now, RetryReason: "r"}}
	patch, err := retry.RecordPatch(u, d, now)
	require.NoError(t, err)
	assert.Equal(t, before, u, "the cached object is not changed")

	var got map[string]any
	require.NoError(t, json.Unmarshal(patch, &got))
	assert.Equal(t, map[string]any{
		"metadata": map[string]any{
			"resourceVersion": "42",
			"annotations":     map[string]any{retry.EpisodeAnnotation: `{"command":"log-start"}`},
		},
		"status": map[string]any{"backoffRetryStatus": []any{
			map[string]any{"retryNum": float64(1), "detectFailedAt": retry.RFC3339(retrytest.T0), "expectedRetryAt": retry.RFC3339(retrytest.T0.Add(30 * time.Second)),
				"realRetryAt": retry.RFC3339(retrytest.T0.Add(30 * time.Second)), "retryReason": "", "originalReason": "BRFailed: boom"},
			map[string]any{"retryNum": float64(2), "detectFailedAt": retry.RFC3339(now), "expectedRetryAt": retry.RFC3339(now),
				"retryReason": "r", "originalReason": ""},
		}},
	}, got)

	_, err = retry.RecordPatch(u, retry.Decision{Action: retry.ActGiveUp}, now)
	assert.Error(t, err, "only records are patched")
}
