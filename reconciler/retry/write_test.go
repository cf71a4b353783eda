package retry

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry/retrytest"
)

// unowned strips the fields write.go may change, leaving everything it must not touch.
func unowned(u *unstructured.Unstructured) map[string]any {
	c := u.DeepCopy()
	ann := c.GetAnnotations()
	delete(ann, EpisodeAnnotation)
	c.SetAnnotations(ann)
	unstructured.RemoveNestedField(c.Object, "status", "backoffRetryStatus")
	unstructured.RemoveNestedField(c.Object, "status", "phase")
	unstructured.RemoveNestedField(c.Object, "status", "conditions")
	for _, cmd := range []string{CmdStart, CmdStop, CmdPause, CmdResume, CmdTruncate} {
		unstructured.RemoveNestedField(c.Object, "status", "logSubCommandStatuses", cmd, "phase")
		unstructured.RemoveNestedField(c.Object, "status", "logSubCommandStatuses", cmd, "conditions")
	}
	return c.Object
}

func TestApplyKeepsUnownedFields(t *testing.T) {
	now := t0.Add(time.Minute)
	for _, d := range []Decision{
		{Action: ActRecordFailure, Command: CmdStart, Record: &Record{RetryNum: 1, DetectFailedAt: now, ExpectedRetryAt: &now}},
		{Action: ActGiveUp, Command: CmdStart, Record: &Record{RetryNum: 6, DetectFailedAt: now}, ConditionReason: ReasonRetryLimitExceeded, Message: "gave up"},
		{Action: ActCloseEpisode, Command: CmdStart},
	} {
		t.Run(string(d.Action), func(t *testing.T) {
			u := retrytest.Rich()
			before := unowned(u)
			require.NoError(t, Apply(u, d, now))
			assert.Equal(t, before, unowned(u))
		})
	}
	u := retrytest.Rich()
	records(rec(1, 0, 30*time.Second, false))(u)
	before := unowned(u)
	require.NoError(t, Apply(u, Decision{Action: ActStartRetry, Command: CmdStart, Message: "retry 1 of 5"}, now))
	assert.Equal(t, before, unowned(u))
}

func TestApplyGiveUpOnLogStart(t *testing.T) {
	u := retrytest.Rich()
	now := t0.Add(time.Minute)
	d := Decision{Action: ActGiveUp, Command: CmdStart, Record: &Record{RetryNum: 6, DetectFailedAt: now}, ConditionReason: ReasonRetryLimitExceeded, Message: "gave up after 5 retries"}
	require.NoError(t, Apply(u, d, now))
	b := ViewBackup(u)
	assert.Equal(t, PhaseFailed, b.Phase)
	assert.Equal(t, PhaseFailed, b.Entries[CmdStart].Phase)
	require.NotNil(t, b.Entries[CmdStart].Failed)
	assert.Equal(t, ReasonRetryLimitExceeded, b.Entries[CmdStart].Failed.Reason, "the Failed condition is replaced, not duplicated")
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "logSubCommandStatuses", CmdStart, "conditions")
	assert.Len(t, conds, 1)
	status, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	assert.Len(t, status, 2, "Scheduled kept, Failed added")
	assert.Equal(t, &Episode{Command: CmdStart, GaveUp: true}, b.Episode)
	require.Len(t, b.Records, 1)
	assert.Nil(t, b.Records[0].ExpectedRetryAt)

	// A give-up of another command leaves status.phase alone.
	u = obj(entry(CmdPause, PhaseFailed))
	require.NoError(t, Apply(u, Decision{Action: ActGiveUp, Command: CmdPause, ConditionReason: ReasonRetryTimeout, Message: "x"}, now))
	assert.Equal(t, "Running", ViewBackup(u).Phase)
}

func TestApplyStartRetry(t *testing.T) {
	u := obj(entry(CmdStart, PhaseFailed), records(rec(1, 0, 30*time.Second, true), rec(2, time.Minute, time.Minute, false)))
	now := t0.Add(3 * time.Minute)
	require.NoError(t, Apply(u, Decision{Action: ActStartRetry, Command: CmdStart, Message: "retry 2 of 5 started"}, now))
	b := ViewBackup(u)
	assert.Equal(t, PhaseRetryFailed, b.Entries[CmdStart].Phase)
	require.Len(t, b.Records, 2)
	assert.Equal(t, at(30*time.Second), b.Records[0].RealRetryAt, "earlier records unchanged")
	assert.Equal(t, &now, b.Records[1].RealRetryAt)
}

func TestRecordsStayBounded(t *testing.T) {
	u := obj()
	now := t0
	// Ten episodes of three failures each.
	for ep := 0; ep < 10; ep++ {
		for n := int64(1); n <= 3; n++ {
			now = now.Add(time.Minute)
			require.NoError(t, Apply(u, Decision{Action: ActRecordFailure, Command: CmdStart,
				Record: &Record{RetryNum: n, DetectFailedAt: now, ExpectedRetryAt: &now}}, now))
		}
	}
	b := ViewBackup(u)
	assert.Len(t, b.Records, 3+keepOlderRecords)
	assert.Equal(t, now, b.Records[len(b.Records)-1].DetectFailedAt, "the newest record is kept")
	assert.Len(t, EpisodeRecords(b.Records), 3)
}
