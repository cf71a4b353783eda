package retry

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry/retrytest"
)

// The builders of package retrytest, under the short names these tables use.
type edit = retrytest.Edit

var (
	t0    = retrytest.T0
	at    = retrytest.At
	obj   = retrytest.Obj
	set   = retrytest.Set
	entry = retrytest.Entry
)

func records(recs ...Record) edit {
	return func(u *unstructured.Unstructured) {
		raw := make([]any, len(recs))
		for i := range recs {
			raw[i] = recordMap(&recs[i])
		}
		set("status.backoffRetryStatus", raw)(u)
	}
}

func episode(cmd string, gaveUp bool) edit {
	return func(u *unstructured.Unstructured) {
		u.SetAnnotations(map[string]string{EpisodeAnnotation: Episode{Command: cmd, GaveUp: gaveUp}.String()})
	}
}

// rec is a record of retry n detected at t0+detect, due after due, started if started.
func rec(n int64, detect, due time.Duration, started bool) Record {
	r := Record{RetryNum: n, DetectFailedAt: t0.Add(detect), ExpectedRetryAt: at(detect + due), OriginalReason: "BRFailed: boom"}
	if started {
		r.RealRetryAt = at(detect + due)
	}
	return r
}

func failedJob(owned bool) *JobView {
	j := &JobView{Name: "backup-pitr-log-start", UID: "job-uid", Owned: owned,
		Failed: &Condition{Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", Time: t0}}
	return j
}

func TestDecide(t *testing.T) {
	const sec = time.Second
	tests := []struct {
		name     string
		backup   *unstructured.Unstructured
		job      *JobView
		livePods []string
		now      time.Duration // after t0
		cfg      *defaults.Config
		want     Decision // compared on Action, Command, Reason, ConditionReason, RequeueAfter, RetryNum
		record   *Record  // the record the decision carries, when it carries one
	}{
		{name: "snapshot backups are ignored", backup: obj(set("spec.backupMode", "snapshot"), entry(CmdStart, PhaseFailed)), want: none},
		{name: "deleted backups are ignored", backup: obj(entry(CmdStart, PhaseFailed), set("metadata.deletionTimestamp", RFC3339(t0))), want: none},
		{name: "invalid backups are ignored", backup: obj(entry(CmdStart, PhaseFailed), set("status.phase", PhaseInvalid)), want: none},
		{name: "unknown command", backup: obj(set("spec.logSubcommand", "log-frobnicate"), entry(CmdStart, PhaseFailed)), want: none},
		{name: "healthy running backup", backup: obj(entry(CmdStart, PhaseComplete), set("status.commitTs", "4523")), want: none},
		{
			name: "BR error is recorded and the first retry scheduled", backup: obj(entry(CmdStart, PhaseFailed)), now: sec,
			want:   Decision{Action: ActRecordFailure, Command: CmdStart, Reason: ReasonRetryScheduled, RequeueAfter: 30 * sec, RetryNum: 1},
			record: &Record{RetryNum: 1, DetectFailedAt: t0.Add(sec), ExpectedRetryAt: at(31 * sec), RetryReason: "log-start failed: BR reported an error", OriginalReason: "BRFailed: rpc error: store 1 unavailable"},
		},
		{
			name: "pod death: Job failed while the entry says Running", backup: obj(entry(CmdStart, PhaseRunning)), job: failedJob(true),
			want:   Decision{Action: ActRecordFailure, Command: CmdStart, Reason: ReasonRetryScheduled, RequeueAfter: 30 * sec, RetryNum: 1},
			record: &Record{RetryNum: 1, DetectFailedAt: t0, ExpectedRetryAt: at(30 * sec), RetryReason: "log-start failed: Job backup-pitr-log-start failed while the command was Running", OriginalReason: "BackoffLimitExceeded: Job has reached the specified backoff limit"},
		},
		{name: "failed Job of a completed command", backup: obj(entry(CmdStart, PhaseComplete)), job: failedJob(true), want: none},
		{name: "failed Job another object controls", backup: obj(entry(CmdStart, PhaseRunning)), job: failedJob(false), want: none},
		{
			name:   "second failure doubles the delay",
			backup: obj(entry(CmdStart, PhaseFailed), episode(CmdStart, false), records(rec(1, 0, 30*sec, true))), now: 60 * sec,
			want: Decision{Action: ActRecordFailure, Command: CmdStart, Reason: ReasonRetryScheduled, RequeueAfter: 60 * sec, RetryNum: 2},
		},
		{
			name:   "waits for exactly the remaining delay",
			backup: obj(entry(CmdStart, PhaseFailed), episode(CmdStart, false), records(rec(1, 0, 30*sec, false))), now: 12 * sec,
			want: Decision{Action: ActWait, Command: CmdStart, RequeueAfter: 18 * sec, RetryNum: 1},
		},
		{
			name:   "due: the old Job is deleted first",
			backup: obj(entry(CmdStart, PhaseFailed), episode(CmdStart, false), records(rec(1, 0, 30*sec, false))), now: 30 * sec,
			job:  failedJob(true),
			want: Decision{Action: ActDeleteJob, Command: CmdStart, RequeueAfter: cleanupRequeue, RetryNum: 1},
		},
		{
			name:   "due: waits while the old Job is being deleted",
			backup: obj(entry(CmdStart, PhaseFailed), episode(CmdStart, false), records(rec(1, 0, 30*sec, false))), now: 31 * sec,
			job:  func() *JobView { j := failedJob(true); j.Deleting = true; return j }(),
			want: Decision{Action: ActAwaitCleanup, Command: CmdStart, RequeueAfter: cleanupRequeue, RetryNum: 1},
		},
		{
			name:   "due: a Job this Backup does not control is never touched",
			backup: obj(entry(CmdStart, PhaseFailed), episode(CmdStart, false), records(rec(1, 0, 30*sec, false))), now: 31 * sec,
			job:  failedJob(false),
			want: Decision{Action: ActAwaitCleanup, Command: CmdStart, RequeueAfter: foreignJobRequeue, RetryNum: 1},
		},
		{
			name:   "due: waits for the old pods to terminate",
			backup: obj(entry(CmdStart, PhaseFailed), episode(CmdStart, false), records(rec(1, 0, 30*sec, false))), now: 31 * sec,
			livePods: []string{"backup-pitr-log-start-x7k2p"},
			want:     Decision{Action: ActAwaitCleanup, Command: CmdStart, RequeueAfter: cleanupRequeue, RetryNum: 1},
		},
		{
			name:   "due and clean: the retry starts",
			backup: obj(entry(CmdStart, PhaseFailed), episode(CmdStart, false), records(rec(1, 0, 30*sec, false))), now: 31 * sec,
			want: Decision{Action: ActStartRetry, Command: CmdStart, Reason: ReasonRetryStarted, RetryNum: 1},
		},
		{
			name: "the failure after the last allowed retry gives up",
			// (maxRetryTimes 2 alone would read as the CRD's snapshot defaults: see below.)
			backup: obj(entry(CmdStart, PhaseFailed), episode(CmdStart, false), set("spec.backoffRetryPolicy", map[string]any{"minRetryDuration": "30s", "maxRetryTimes": int64(2)}),
				records(rec(1, 0, 30*sec, true), rec(2, 40*sec, 60*sec, true))), now: 200 * sec,
			want:   Decision{Action: ActGiveUp, Command: CmdStart, Reason: ReasonRetryExhausted, ConditionReason: ReasonRetryLimitExceeded, RetryNum: 3},
			record: &Record{RetryNum: 3, DetectFailedAt: t0.Add(200 * sec), RetryReason: "log-start failed: BR reported an error", OriginalReason: "BRFailed: rpc error: store 1 unavailable"},
		},
		{
			name: "maxRetryTimes 0 means no retries", backup: obj(entry(CmdStart, PhaseFailed), set("spec.backoffRetryPolicy", map[string]any{"maxRetryTimes": int64(0)})),
			want: Decision{Action: ActGiveUp, Command: CmdStart, Reason: ReasonRetryExhausted, ConditionReason: ReasonRetryLimitExceeded, RetryNum: 1},
		},
		{
			name: "a retry that would start past retryTimeout is not scheduled",
			backup: obj(entry(CmdStart, PhaseFailed), episode(CmdStart, false),
				set("spec.backoffRetryPolicy", map[string]any{"minRetryDuration": "1m", "retryTimeout": "3m"}),
				records(rec(1, 0, 60*sec, true))), now: 90 * sec,
			want: Decision{Action: ActGiveUp, Command: CmdStart, Reason: ReasonRetryExhausted, ConditionReason: ReasonRetryTimeout, RetryNum: 2},
		},
		{
			name: "retryTimeout passed while waiting (for example a controller outage)",
			backup: obj(entry(CmdStart, PhaseFailed), episode(CmdStart, false),
				set("spec.backoffRetryPolicy", map[string]any{"retryTimeout": "10m"}), records(rec(1, 0, 30*sec, false))), now: 11 * time.Minute,
			want: Decision{Action: ActGiveUp, Command: CmdStart, Reason: ReasonRetryExhausted, ConditionReason: ReasonRetryTimeout, RetryNum: 1},
		},
		{
			name: "non-retryable error", backup: obj(entry(CmdStart, PhaseFailed), set("status.logSubCommandStatuses.log-start.conditions",
				[]any{map[string]any{"type": "Failed", "status": "True", "message": "[BR:Common:ErrInvalidArgument] bad flag"}})),
			want: Decision{Action: ActGiveUp, Command: CmdStart, Reason: ReasonRetrySkipped, ConditionReason: ReasonNotRetryable, RetryNum: 1},
		},
		{
			name: "log-start is never re-run once commitTs is set", backup: obj(entry(CmdStart, PhaseFailed), set("status.commitTs", "4523")),
			want: Decision{Action: ActGiveUp, Command: CmdStart, Reason: ReasonRetrySkipped, ConditionReason: ReasonCommitTsSet, RetryNum: 1},
		},
		{
			name: "malformed policy is not retried", backup: obj(entry(CmdStart, PhaseFailed), set("spec.backoffRetryPolicy", map[string]any{"minRetryDuration": "30"})),
			want: Decision{Action: ActGiveUp, Command: CmdStart, Reason: ReasonRetrySkipped, ConditionReason: ReasonInvalidRetryPolicy, RetryNum: 1},
		},
		{
			// TiDB Operator's first status write fills the CRD's snapshot defaults into a
			// log Backup created without a policy (the webhook was down): they read as
			// unset, as the webhook reads them.
			name:   "the CRD's snapshot defaults read as the log defaults",
			backup: obj(entry(CmdStart, PhaseFailed), set("spec.backoffRetryPolicy", map[string]any{"minRetryDuration": "300s", "maxRetryTimes": int64(2), "retryTimeout": "30m"})),
			want:   Decision{Action: ActRecordFailure, Command: CmdStart, Reason: ReasonRetryScheduled, RequeueAfter: 30 * sec, RetryNum: 1},
		},
		{
			name: "the opt-out annotation keeps the CRD's snapshot defaults",
			backup: obj(entry(CmdStart, PhaseFailed), set("spec.backoffRetryPolicy", map[string]any{"minRetryDuration": "300s", "maxRetryTimes": int64(2), "retryTimeout": "30m"}),
				set("metadata.annotations", map[string]any{"tidb-backup-guard.io/keep-schema-defaults": "true"})),
			want: Decision{Action: ActRecordFailure, Command: CmdStart, Reason: ReasonRetryScheduled, RequeueAfter: 300 * sec, RetryNum: 1},
		},
		{
			name:   "configured defaults fill a missing policy",
			backup: obj(entry(CmdStart, PhaseFailed)),
			cfg:    &defaults.Config{LogDefaults: defaults.Policy{MinRetryDuration: 7 * sec, MaxRetryTimes: 1, RetryTimeout: time.Hour}},
			want:   Decision{Action: ActRecordFailure, Command: CmdStart, Reason: ReasonRetryScheduled, RequeueAfter: 7 * sec, RetryNum: 1},
		},
		{
			name:   "success closes the episode",
			backup: obj(entry(CmdStart, PhaseComplete), set("status.commitTs", "4523"), episode(CmdStart, false), records(rec(1, 0, 30*sec, true))),
			want:   Decision{Action: ActCloseEpisode, Command: CmdStart, Reason: ReasonRetrySucceeded},
		},
		{
			name:   "a spent episode stays put",
			backup: obj(entry(CmdStart, PhaseFailed), episode(CmdStart, true), records(rec(1, 0, 30*sec, true), Record{RetryNum: 2, DetectFailedAt: t0.Add(time.Minute)})),
			now:    time.Hour, want: none,
		},
		{
			name:   "a re-run after giving up resets the episode",
			backup: obj(entry(CmdStart, PhaseScheduled), episode(CmdStart, true), records(rec(1, 0, 30*sec, true))),
			want:   Decision{Action: ActCloseEpisode, Command: CmdStart, Reason: ReasonEpisodeReset},
		},
		{
			name: "an episode of another command does not count",
			backup: obj(set("spec.logSubcommand", CmdPause), entry(CmdPause, PhaseFailed), set("status.commitTs", "4523"),
				episode(CmdStop, false), records(rec(1, 0, 30*sec, true), rec(2, 40*sec, 60*sec, true))),
			want: Decision{Action: ActRecordFailure, Command: CmdPause, Reason: ReasonRetryScheduled, RequeueAfter: 30 * sec, RetryNum: 1},
		},
		{
			name:   "a failure older than the retry window is left alone",
			backup: obj(entry(CmdStart, PhaseFailed)), now: 31 * time.Minute, want: none,
		},
		{
			name: "truncate failures are retried as log-truncate",
			backup: obj(entry(CmdStart, PhaseComplete), set("status.commitTs", "4523"), set("spec.logTruncateUntil", "2026-11-27T00:00:00Z"),
				entry(CmdTruncate, PhaseFailed)),
			want: Decision{Action: ActRecordFailure, Command: CmdTruncate, Reason: ReasonRetryScheduled, RequeueAfter: 30 * sec, RetryNum: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaults.DefaultConfig()
			if tc.cfg != nil {
				cfg = *tc.cfg
			}
			d := Decide(Input{Now: t0.Add(tc.now), Backup: ViewBackup(tc.backup), Job: tc.job, LivePods: tc.livePods,
				Config: cfg, NonRetryable: DefaultNonRetryable})
			got := Decision{Action: d.Action, Command: d.Command, Reason: d.Reason, ConditionReason: d.ConditionReason,
				RequeueAfter: d.RequeueAfter, RetryNum: d.RetryNum}
			assert.Equal(t, tc.want, got, "message: %s", d.Message)
			if tc.record != nil {
				require.NotNil(t, d.Record)
				assert.Equal(t, *tc.record, *d.Record)
			}
			if d.Action == ActGiveUp || d.Action == ActRecordFailure || d.Action == ActStartRetry {
				assert.NotEmpty(t, d.Message)
			}
		})
	}
}

func TestGiveUpMessages(t *testing.T) {
	b := obj(entry(CmdStart, PhaseFailed), episode(CmdStart, false), set("spec.backoffRetryPolicy", map[string]any{"maxRetryTimes": int64(1)}),
		records(rec(1, 0, 30*time.Second, true)))
	d := Decide(Input{Now: t0.Add(time.Minute), Backup: ViewBackup(b), Config: defaults.DefaultConfig()})
	assert.Equal(t, "gave up after 1 retries (maxRetryTimes 1); last error: BRFailed: rpc error: store 1 unavailable", d.Message)
}

func TestCurrentCommand(t *testing.T) {
	tests := []struct {
		name  string
		edits []edit
		want  string
	}{
		{"empty subcommand starts", nil, CmdStart},
		{"logStop", []edit{set("spec.logStop", true)}, CmdStop},
		{"stopped phase", []edit{set("status.phase", PhaseStopped)}, CmdStop},
		{"paused phase resumes", []edit{set("status.phase", PhasePaused)}, CmdResume},
		{"log-start while paused resumes", []edit{set("spec.logSubcommand", CmdStart), set("status.phase", PhasePaused)}, CmdResume},
		{"log-start", []edit{set("spec.logSubcommand", CmdStart)}, CmdStart},
		{"log-stop", []edit{set("spec.logSubcommand", CmdStop)}, CmdStop},
		{"log-pause", []edit{set("spec.logSubcommand", CmdPause)}, CmdPause},
		{"unknown", []edit{set("spec.logSubcommand", "log-x")}, ""},
		{"truncate after a done start", []edit{set("status.commitTs", "1"), set("spec.logTruncateUntil", "5")}, CmdTruncate},
		{"truncate already done", []edit{set("status.commitTs", "1"), set("spec.logTruncateUntil", "5"), set("status.logSuccessTruncateUntil", "5")}, CmdStart},
		{"no truncate before start is done", []edit{set("spec.logTruncateUntil", "5")}, CmdStart},
		{"truncate after a done pause", []edit{set("spec.logSubcommand", CmdPause), set("status.phase", PhasePaused), set("spec.logTruncateUntil", "5")}, CmdTruncate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, CurrentCommand(ViewBackup(obj(tc.edits...))))
		})
	}
}

// An empty --non-retryable-errors retries everything, BR's invalid-argument errors too.
func TestEmptyNonRetryableListRetriesEverything(t *testing.T) {
	b := obj(entry(CmdStart, PhaseFailed), set("status.logSubCommandStatuses.log-start.conditions",
		[]any{map[string]any{"type": "Failed", "status": "True", "message": "[BR:Common:ErrInvalidArgument] bad flag"}}))
	in := Input{Now: t0, Backup: ViewBackup(b), Config: defaults.DefaultConfig()}
	assert.Equal(t, ActRecordFailure, Decide(in).Action)
	in.NonRetryable = DefaultNonRetryable
	assert.Equal(t, ActGiveUp, Decide(in).Action)
}
