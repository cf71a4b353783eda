package reconciler

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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

func rich() *unstructured.Unstructured {
	return obj(entry(CmdStart, PhaseFailed),
		set("metadata.labels", map[string]any{"team": "dba"}),
		set("metadata.annotations", map[string]any{"example.com/keep": "me"}),
		set("spec.s3", map[string]any{"bucket": "b", "prefix": "p", "options": []any{"--x"}}),
		set("spec.resources", map[string]any{"limits": map[string]any{"memory": "4Gi"}}),
		set("status.progresses", []any{map[string]any{"step": "Data", "progress": 12.5}}),
		set("status.logSubCommandStatuses.log-start.timeStarted", "2026-11-28T09:00:00Z"),
		set("status.someFutureField", map[string]any{"a": []any{int64(1), "two"}}),
		set("status.conditions", []any{map[string]any{"type": "Scheduled", "status": "True"}}),
	)
}

func TestApplyKeepsUnownedFields(t *testing.T) {
	now := t0.Add(time.Minute)
	for _, d := range []Decision{
		{Action: ActRecordFailure, Command: CmdStart, Record: &Record{RetryNum: 1, DetectFailedAt: now, ExpectedRetryAt: &now}},
		{Action: ActGiveUp, Command: CmdStart, Record: &Record{RetryNum: 6, DetectFailedAt: now}, ConditionReason: ReasonRetryLimitExceeded, Message: "gave up"},
		{Action: ActCloseEpisode, Command: CmdStart},
	} {
		t.Run(string(d.Action), func(t *testing.T) {
			u := rich()
			before := unowned(u)
			require.NoError(t, apply(u, d, now))
			assert.Equal(t, before, unowned(u))
		})
	}
	u := rich()
	records(rec(1, 0, 30*time.Second, false))(u)
	before := unowned(u)
	require.NoError(t, apply(u, Decision{Action: ActStartRetry, Command: CmdStart, Message: "retry 1 of 5"}, now))
	assert.Equal(t, before, unowned(u))
}

func TestApplyGiveUpOnLogStart(t *testing.T) {
	u := rich()
	now := t0.Add(time.Minute)
	d := Decision{Action: ActGiveUp, Command: CmdStart, Record: &Record{RetryNum: 6, DetectFailedAt: now}, ConditionReason: ReasonRetryLimitExceeded, Message: "gave up after 5 retries"}
	require.NoError(t, apply(u, d, now))
	b := viewBackup(u)
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
	require.NoError(t, apply(u, Decision{Action: ActGiveUp, Command: CmdPause, ConditionReason: ReasonRetryTimeout, Message: "x"}, now))
	assert.Equal(t, "Running", viewBackup(u).Phase)
}

func TestApplyStartRetry(t *testing.T) {
	u := obj(entry(CmdStart, PhaseFailed), records(rec(1, 0, 30*time.Second, true), rec(2, time.Minute, time.Minute, false)))
	now := t0.Add(3 * time.Minute)
	require.NoError(t, apply(u, Decision{Action: ActStartRetry, Command: CmdStart, Message: "retry 2 of 5 started"}, now))
	b := viewBackup(u)
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
			require.NoError(t, apply(u, Decision{Action: ActRecordFailure, Command: CmdStart,
				Record: &Record{RetryNum: n, DetectFailedAt: now, ExpectedRetryAt: &now}}, now))
		}
	}
	b := viewBackup(u)
	assert.Len(t, b.Records, 3+keepOlderRecords)
	assert.Equal(t, now, b.Records[len(b.Records)-1].DetectFailedAt, "the newest record is kept")
	assert.Len(t, episodeRecords(b.Records), 3)
}

func TestRecordPatchHoldsOnlyOwnedFields(t *testing.T) {
	cached, err := StripBackup(rich())
	require.NoError(t, err)
	u := cached.(*unstructured.Unstructured)
	u.SetResourceVersion("42")
	records(rec(1, 0, 30*time.Second, true))(u)
	before := u.DeepCopy()
	now := t0.Add(time.Minute)
	d := Decision{Action: ActRecordFailure, Command: CmdStart, Record: &Record{RetryNum: 2, DetectFailedAt: now, ExpectedRetryAt: &now, RetryReason: "r"}}
	patch, err := recordPatch(u, d, now)
	require.NoError(t, err)
	assert.Equal(t, before, u, "the cached object is not changed")

	var got map[string]any
	require.NoError(t, json.Unmarshal(patch, &got))
	assert.Equal(t, map[string]any{
		"metadata": map[string]any{
			"resourceVersion": "42",
			"annotations":     map[string]any{EpisodeAnnotation: `{"command":"log-start"}`},
		},
		"status": map[string]any{"backoffRetryStatus": []any{
			map[string]any{"retryNum": float64(1), "detectFailedAt": rfc3339(t0), "expectedRetryAt": rfc3339(t0.Add(30 * time.Second)),
				"realRetryAt": rfc3339(t0.Add(30 * time.Second)), "retryReason": "", "originalReason": "BRFailed: boom"},
			map[string]any{"retryNum": float64(2), "detectFailedAt": rfc3339(now), "expectedRetryAt": rfc3339(now),
				"retryReason": "r", "originalReason": ""},
		}},
	}, got)

	_, err = recordPatch(u, Decision{Action: ActGiveUp}, now)
	assert.Error(t, err, "only records are patched")
}
