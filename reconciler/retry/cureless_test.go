package retry

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
)

// failedWith is a log-start entry Failed with the given reason and message.
func failedWith(reason, message string) edit {
	return set("status.logSubCommandStatuses.log-start", map[string]any{"command": CmdStart, "phase": PhaseFailed,
		"conditions": []any{map[string]any{"type": PhaseFailed, "status": "True", "reason": reason, "message": message,
			"lastTransitionTime": RFC3339(t0)}}})
}

// operatorPausedBy is TiDB Operator's record of an error pause with BR's message.
func operatorPausedBy(message string) edit {
	return func(u *unstructured.Unstructured) {
		operatorPaused(t0)(u)
		msg := "Log backup paused due to error: " + message
		set("status.conditions", []any{map[string]any{"type": PhaseRetryFailed, "status": "True", "reason": operatorErrorPaused,
			"message": msg, "lastTransitionTime": RFC3339(t0)}})(u)
		set("status.logSubCommandStatuses.log-start.conditions", []any{map[string]any{"type": PhaseRetryFailed, "status": "True",
			"reason": operatorErrorPaused, "message": msg, "lastTransitionTime": RFC3339(t0)}})(u)
	}
}

func pausedWith(message string) *kernel.Result {
	r := task(true, true, t0, time.Time{})
	r.Task.PauseMessage = message
	return r
}

// Failures a retry cannot cure: expired or refused credentials, a pause for
// checkpoint lag, and TiDB Operator's word that it could not read PD.
func TestCurelessFailures(t *testing.T) {
	tests := []struct {
		name         string
		u            *unstructured.Unstructured
		kernel       *kernel.Result
		nonRetryable []string // nil: DefaultNonRetryable
		want         Decision
		message      []string // phrases the message must hold
	}{
		{name: "log-start refused by S3 for an expired token: not retried, rotate and restart",
			u:       obj(failedWith("LogBackupStartFailed", "[BR:Common:ErrUnknown] operation error S3: PutObject, ExpiredToken: The provided token has expired")),
			want:    Decision{Action: ActGiveUp, Command: CmdStart, Reason: ReasonRetrySkipped, ConditionReason: ReasonCredentialsRejected, RetryNum: 1},
			message: []string{`"ExpiredToken"`, "rotate the credentials", "log-stop"}},
		{name: "BR's endless credential loop, told by its Job's failure",
			u:       obj(failedWith("BRFailed", "credential info not found, retrying")),
			want:    Decision{Action: ActGiveUp, Command: CmdStart, Reason: ReasonRetrySkipped, ConditionReason: ReasonCredentialsRejected, RetryNum: 1},
			message: []string{"credential info not found"}},
		{name: "--non-retryable-errors without the credential errors: retried as any failure",
			u: obj(failedWith("BRFailed", "AccessDenied: Access Denied")), nonRetryable: []string{"ErrInvalidArgument"},
			want: Decision{Action: ActRecordFailure, Command: CmdStart, Reason: ReasonRetryScheduled, RetryNum: 1, RequeueAfter: 30 * time.Second}},
		{name: "a pause for refused credentials, seen by the probe: the same verdict, on the running log-start",
			u: running(), kernel: pausedWith("store 1: KV:LogBackup:Io: InvalidAccessKeyId: The AWS Access Key Id you provided does not exist"),
			want: Decision{Action: ActGiveUp, Command: CmdResume, Pause: true, Entry: CmdStart, Reason: ReasonRetrySkipped,
				ConditionReason: ReasonCredentialsRejected, RetryNum: 1},
			message: []string{`"InvalidAccessKeyId"`, "rotate the credentials"}},
		{name: "... and told by TiDB Operator's record",
			u: running(operatorPausedBy("SignatureDoesNotMatch: the signature we calculated does not match")),
			want: Decision{Action: ActGiveUp, Command: CmdResume, Pause: true, Entry: CmdStart, Reason: ReasonRetrySkipped,
				ConditionReason: ReasonCredentialsRejected, RetryNum: 1}},
		{name: "a pause for checkpoint lag, seen by the probe: recorded once, not resumed, the remedy given",
			u: running(), kernel: pausedWith("the checkpoint lag is too huge (lag 49h0m0s, limit 48h0m0s)"),
			want:    Decision{Action: ActGiveUp, Command: CmdResume, Pause: true, Reason: ReasonRetrySkipped, RetryNum: 1, KeepEntry: true},
			message: []string{"tidb_advancer_check_point_lag_limit", "br log resume --task-name pitr", "alerts keep firing"}},
		{name: "... and told by TiDB Operator's record",
			u:    running(operatorPausedBy("check point lagged too large")),
			want: Decision{Action: ActGiveUp, Command: CmdResume, Pause: true, Reason: ReasonRetrySkipped, RetryNum: 1, KeepEntry: true}},
		{name: "the lag-limit pause was recorded: nothing more while it stays paused",
			u: running(operatorPausedBy("check point lagged too large"), set("metadata.annotations", map[string]any{
				EpisodeAnnotation: Episode{Command: CmdResume, Pause: true, GaveUp: true}.String()})),
			kernel: pausedWith("the checkpoint lag is too huge"), want: none},
		{name: "... and once the limit was raised and the task resumed, the episode ends",
			u: running(set("metadata.annotations", map[string]any{
				EpisodeAnnotation: Episode{Command: CmdResume, Pause: true, GaveUp: true}.String()})),
			kernel: task(false, false, t0, time.Time{}),
			want:   Decision{Action: ActCloseEpisode, Command: CmdResume, Pause: true, Reason: ReasonRetrySucceeded}},
		{name: "TiDB Operator could not read PD (LogBackupStateQueryFailed): not a failure, nothing to do",
			u:    running(failedWith(operatorStateQueryFailed, "failed to query log backup state from PD, will retry for 10m")),
			want: none},
		{name: "... whatever the probe says: TiDB Operator's next word decides",
			u:      running(failedWith(operatorStateQueryFailed, "failed to query log backup state from PD")),
			kernel: pausedWith("store 4: disk full"), want: none},
		{name: "... and during our retry of a failed log-start: the retry waits too",
			u: obj(failedWith(operatorStateQueryFailed, "failed to query log backup state from PD"), episode(CmdStart, false),
				records(rec(1, 0, 30*time.Second, false))),
			want: none},
		{name: "LogBackupTaskNotFound after it (the task is really gone, tidb-operator#6950): a failure as before, not retried",
			u:    running(failedWith(operatorTaskNotFound, "Log backup task not found in TiKV")),
			want: Decision{Action: ActGiveUp, Command: CmdStart, Reason: ReasonRetrySkipped, ConditionReason: ReasonCommitTsSet, RetryNum: 1, KeepEntry: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nonRetryable := tt.nonRetryable
			if nonRetryable == nil {
				nonRetryable = DefaultNonRetryable
			}
			in := Input{Now: t0.Add(10 * time.Second), Backup: ViewBackup(tt.u), Config: defaults.DefaultConfig(),
				NonRetryable: nonRetryable, Kernel: tt.kernel}
			d := Decide(in)
			got := Decision{Action: d.Action, Command: d.Command, Pause: d.Pause, Reason: d.Reason, ConditionReason: d.ConditionReason,
				RetryNum: d.RetryNum, RequeueAfter: d.RequeueAfter, Entry: d.Entry, KeepEntry: d.KeepEntry}
			assert.Equal(t, tt.want, got, "message: %s", d.Message)
			for _, m := range tt.message {
				assert.Contains(t, d.Message, m)
			}
		})
	}
}
