package retry

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
)

// running is a log backup whose log-start is done.
func running(edits ...edit) *unstructured.Unstructured {
	base := []edit{set("status.commitTs", "4523"), entry(CmdStart, PhaseComplete),
		set("spec.backoffRetryPolicy", map[string]any{"minRetryDuration": "30s", "maxRetryTimes": int64(2), "retryTimeout": "30m"})}
	return obj(append(base, edits...)...)
}

// operatorPaused is TiDB Operator's record of an error pause, written at t.
func operatorPaused(t time.Time) edit {
	return func(u *unstructured.Unstructured) {
		set("status.phase", PhaseRetryFailed)(u)
		set("status.conditions", []any{map[string]any{"type": PhaseRetryFailed, "status": "True", "reason": operatorErrorPaused,
			"message": "Log backup paused due to error: error", "lastTransitionTime": RFC3339(t)}})(u)
		set("status.logSubCommandStatuses.log-start", map[string]any{"command": CmdStart, "phase": PhaseRetryFailed,
			"conditions": []any{map[string]any{"type": PhaseRetryFailed, "status": "True", "reason": operatorErrorPaused,
				"message": "Log backup paused due to error: error", "lastTransitionTime": RFC3339(t)}}})(u)
	}
}

func pauseEpisode(handOffs int) edit {
	return func(u *unstructured.Unstructured) {
		u.SetAnnotations(map[string]string{EpisodeAnnotation: Episode{Command: CmdResume, Pause: true, HandOffs: handOffs}.String()})
	}
}

// resumed: log-resume completed at t, and the Backup runs.
func resumed(t time.Time) edit {
	return func(u *unstructured.Unstructured) {
		set("status.phase", PhaseRunning)(u)
		set("status.logSubCommandStatuses.log-resume", map[string]any{"command": CmdResume, "phase": PhaseComplete,
			"conditions": []any{map[string]any{"type": PhaseComplete, "status": "True", "lastTransitionTime": RFC3339(t)}}})(u)
	}
}

func task(paused, byError bool, checkpoint, gcSafePoint time.Time) *kernel.Result {
	t := &kernel.Task{Name: "pitr", Exists: true, StartTS: 7, Paused: paused, PausedByError: byError, CheckpointTS: kernel.TSO(checkpoint)}
	if byError {
		t.PauseMessage = "store 4: KV:LogBackup:Io: disk full"
	}
	if !gcSafePoint.IsZero() {
		t.GCSafePoint = kernel.TSO(gcSafePoint)
	}
	return &kernel.Result{Task: t, At: checkpoint.Add(time.Hour)} // a reading well after anything below
}

func pending(n int64, detect, due time.Duration) Record {
	return Record{RetryNum: n, DetectFailedAt: t0.Add(detect), ExpectedRetryAt: at(detect + due), OriginalReason: "kernel: store 4: disk full"}
}

func started(n int64, detect, due time.Duration) Record {
	r := pending(n, detect, due)
	r.RealRetryAt = r.ExpectedRetryAt
	return r
}

func TestDecidePause(t *testing.T) {
	sec := time.Second
	tests := []struct {
		name   string
		u      *unstructured.Unstructured
		now    time.Duration
		kernel *kernel.Result
		// noHandOff: TiDB Operator cannot run log-resume (v1.6.0)
		noHandOff bool
		want      Decision
	}{
		{name: "TiDB Operator cannot run log-resume: recorded and alerted on, not resumed", u: running(), kernel: task(true, true, t0, time.Time{}),
			noHandOff: true, want: Decision{Action: ActGiveUp, Command: CmdResume, Pause: true, Reason: ReasonRetrySkipped, RetryNum: 1, KeepEntry: true}},
		{name: "... and once someone resumed it, the episode ends", u: running(set("metadata.annotations", map[string]any{
			EpisodeAnnotation: Episode{Command: CmdResume, Pause: true, GaveUp: true}.String()})), kernel: task(false, false, t0, time.Time{}),
			noHandOff: true, want: Decision{Action: ActCloseEpisode, Command: CmdResume, Pause: true, Reason: ReasonRetrySucceeded}},
		{name: "the probe sees an error pause: record it, a pause episode", u: running(), kernel: task(true, true, t0, time.Time{}),
			want: Decision{Action: ActRecordFailure, Command: CmdResume, Pause: true, Reason: ReasonRetryScheduled, RetryNum: 1, RequeueAfter: 30 * sec}},
		{name: "TiDB Operator's record, no probe", u: running(operatorPaused(t0)),
			want: Decision{Action: ActRecordFailure, Command: CmdResume, Pause: true, Reason: ReasonRetryScheduled, RetryNum: 1, RequeueAfter: 30 * sec}},
		{name: "a manual pause is left alone, whatever TiDB Operator calls it", u: running(operatorPaused(t0)), kernel: task(true, false, t0, time.Time{}),
			want: none},
		{name: "the probe says the task runs: TiDB Operator's stale record is put back, no record", u: running(operatorPaused(t0)),
			kernel: task(false, false, t0, time.Time{}),
			want:   Decision{Action: ActPutBack, Command: CmdStart, Reason: ReasonRecoveredFromKernel, RetryNum: 1}},
		{name: "a reading of PD from before TiDB Operator's record cannot contradict it: wait for a newer one",
			u: running(operatorPaused(t0)), kernel: &kernel.Result{Task: &kernel.Task{Name: "pitr", Exists: true, StartTS: 7}, At: t0.Add(time.Second)},
			want: Decision{Action: ActWait, Command: CmdStart, RequeueAfter: time.Second}},
		{name: "GC already passed the checkpoint: given up at once", u: running(), kernel: task(true, true, t0, t0.Add(sec)),
			want: Decision{Action: ActGiveUp, Command: CmdResume, Entry: CmdStart, Pause: true, Reason: ReasonRetrySkipped,
				ConditionReason: ReasonLogGapUnrecoverable, RetryNum: 1}},
		{name: "waiting for the backoff", u: running(operatorPaused(t0), pauseEpisode(0), records(pending(1, 0, 30*sec))), now: 10 * sec,
			want: Decision{Action: ActWait, Command: CmdResume, Pause: true, RetryNum: 1, RequeueAfter: 20 * sec}},
		{name: "due: handed to TiDB Operator", u: running(operatorPaused(t0), pauseEpisode(0), records(pending(1, 0, 30*sec))), now: 30 * sec,
			want: Decision{Action: ActHandOff, Command: CmdResume, Pause: true, Reason: ReasonRetryStarted, RetryNum: 1}},
		{name: "due, but GC passed the checkpoint meanwhile: given up, no resume", u: running(operatorPaused(t0), pauseEpisode(0), records(pending(1, 0, 30*sec))),
			now: 30 * sec, kernel: task(true, true, t0, t0.Add(sec)),
			want: Decision{Action: ActGiveUp, Command: CmdResume, Entry: CmdStart, Pause: true, Reason: ReasonRetrySkipped,
				ConditionReason: ReasonLogGapUnrecoverable, RetryNum: 1}},
		{name: "resumed by someone else before the retry", u: running(pauseEpisode(0), records(pending(1, 0, 30*sec))), now: 10 * sec,
			kernel: task(false, false, t0, time.Time{}),
			want:   Decision{Action: ActCloseEpisode, Command: CmdResume, Pause: true, Reason: ReasonRetrySucceeded}},
		{name: "handed off, TiDB Operator runs log-resume", u: running(set("status.phase", PhasePaused), pauseEpisode(0), records(started(1, 0, 30*sec))),
			now: 31 * sec, want: none},
		{name: "due, but TiDB Operator wrote the Backup just now: hand off once it is quiet",
			u: running(operatorPaused(t0), set("status.timeSynced", RFC3339(t0.Add(29*sec))), pauseEpisode(0), records(pending(1, 0, 30*sec))), now: 30 * sec,
			want: Decision{Action: ActWait, Command: CmdResume, RetryNum: 1, RequeueAfter: 29*sec + sec + handOffQuiet - 30*sec}},
		{name: "due and TiDB Operator quiet: handed off",
			u: running(operatorPaused(t0), set("status.timeSynced", RFC3339(t0.Add(27*sec))), pauseEpisode(0), records(pending(1, 0, 30*sec))), now: 30 * sec,
			want: Decision{Action: ActHandOff, Command: CmdResume, Pause: true, Reason: ReasonRetryStarted, RetryNum: 1}},
		{name: "the hand-off was overwritten: not again right after that write",
			u: running(operatorPaused(t0.Add(31*sec)), pauseEpisode(0), records(started(1, 0, 30*sec))), now: 31 * sec,
			want: Decision{Action: ActWait, Command: CmdResume, RetryNum: 1, RequeueAfter: 31*sec + sec + handOffQuiet - 31*sec}},
		{name: "... but once TiDB Operator is quiet: handed off again",
			u: running(operatorPaused(t0.Add(31*sec)), pauseEpisode(0), records(started(1, 0, 30*sec))), now: 31*sec + sec + handOffQuiet,
			want: Decision{Action: ActHandOff, HandOffs: 1, Command: CmdResume, Pause: true, Reason: ReasonRetryStarted, RetryNum: 1}},
		{name: "the wait between hand-offs doubles with each loss",
			u: running(operatorPaused(t0.Add(31*sec)), pauseEpisode(2), records(started(1, 0, 30*sec))), now: 35 * sec,
			want: Decision{Action: ActWait, Command: CmdResume, RetryNum: 1, RequeueAfter: 30*sec + handOffBackoff<<2 - 35*sec}},
		{name: "... up to a bound",
			u: running(operatorPaused(t0.Add(31*sec)), pauseEpisode(MaxHandOffs-2), records(started(1, 0, 30*sec))), now: 35 * sec,
			want: Decision{Action: ActWait, Command: CmdResume, RetryNum: 1, RequeueAfter: 30*sec + maxHandOffBackoff - 35*sec}},
		{name: "MaxHandOffs hand-offs all overwritten: given up, saying what TiDB Operator did",
			u: running(operatorPaused(t0.Add(31*sec)), pauseEpisode(MaxHandOffs-1), records(started(1, 0, 30*sec))), now: 31 * sec,
			want: Decision{Action: ActGiveUp, Command: CmdResume, Entry: CmdStart, Pause: true, Reason: ReasonRetrySkipped,
				ConditionReason: ReasonHandOffOverwritten, RetryNum: 1}},
		{name: "handed off and not overwritten: TiDB Operator has it",
			u: running(set("status.phase", PhasePaused), pauseEpisode(3), records(started(1, 0, 30*sec))), now: 90 * sec, want: none},
		{name: "resumed, the checkpoint moved past the resume: runs again", u: running(resumed(t0.Add(35*sec)), pauseEpisode(0), records(started(1, 0, 30*sec))),
			now: 40 * sec, kernel: task(false, false, t0.Add(36*sec), time.Time{}),
			want: Decision{Action: ActCloseEpisode, Command: CmdResume, Pause: true, Reason: ReasonRetrySucceeded}},
		{name: "resumed, the checkpoint has not moved: not yet", u: running(resumed(t0.Add(35*sec)), pauseEpisode(0), records(started(1, 0, 30*sec))),
			now: 40 * sec, kernel: task(false, false, t0.Add(10*sec), time.Time{}), want: none},
		{name: "from status.logCheckpointTs without the probe", u: running(resumed(t0.Add(35*sec)), pauseEpisode(0), records(started(1, 0, 30*sec)),
			set("status.logCheckpointTs", strconv.FormatUint(kernel.TSO(t0.Add(50*sec)), 10))), now: 60 * sec,
			want: Decision{Action: ActCloseEpisode, Command: CmdResume, Pause: true, Reason: ReasonRetrySucceeded}},
		{name: "paused again after the resume: the next attempt", u: running(resumed(t0.Add(35*sec)), pauseEpisode(0), records(started(1, 0, 30*sec))),
			now: 40 * sec, kernel: task(true, true, t0.Add(10*sec), time.Time{}),
			want: Decision{Action: ActRecordFailure, Command: CmdResume, Pause: true, Reason: ReasonRetryScheduled, RetryNum: 2, RequeueAfter: 60 * sec}},
		{name: "paused again after the last resume allowed: exhausted", u: running(resumed(t0.Add(95*sec)), pauseEpisode(0),
			records(started(1, 0, 30*sec), started(2, 35*sec, 60*sec))), now: 100 * sec, kernel: task(true, true, t0.Add(10*sec), time.Time{}),
			want: Decision{Action: ActGiveUp, Command: CmdResume, Entry: CmdStart, Pause: true, Reason: ReasonRetryExhausted,
				ConditionReason: ReasonRetryLimitExceeded, RetryNum: 3}},
		{name: "TiDB Operator marks it paused from a reading older than the resume: wait until that reading expired",
			u: running(resumed(t0.Add(35*sec)), operatorPaused(t0.Add(36*sec)), pauseEpisode(0), records(started(1, 0, 30*sec))), now: 40 * sec,
			want: Decision{Action: ActWait, Command: CmdResume, RetryNum: 1, RequeueAfter: 36*sec + errorPausedCooldown - 40*sec}},
		{name: "... then set it back, keeping the episode, so that TiDB Operator reads PD afresh",
			u: running(resumed(t0.Add(35*sec)), operatorPaused(t0.Add(36*sec)), pauseEpisode(0), records(started(1, 0, 30*sec))), now: 36*sec + errorPausedCooldown,
			want: Decision{Action: ActPutBack, Pause: true, Command: CmdStart, Reason: ReasonPauseRecordOutdated, RetryNum: 1}},
		// Seen under make stress (2026-12-05): the resume ran and the checkpoint moved, but
		// TiDB Operator's record, from a reading older than the resume, still said paused.
		// Closing the episode then took that record for a new pause and resumed again.
		{name: "checkpoint moved past the resume, but TiDB Operator's stale record stands: set it back and end the episode in one write",
			u: running(resumed(t0.Add(35*sec)), operatorPaused(t0.Add(36*sec)), pauseEpisode(0), records(started(1, 0, 30*sec)),
				set("status.logCheckpointTs", strconv.FormatUint(kernel.TSO(t0.Add(36*sec)), 10))), now: 36*sec + errorPausedCooldown,
			want: Decision{Action: ActPutBack, Command: CmdStart, Reason: ReasonPauseRecordOutdated, RetryNum: 1}},
		{name: "TiDB Operator marks it paused from a fresh reading: the next attempt",
			u:    running(resumed(t0.Add(35*sec)), operatorPaused(t0.Add(36*sec+operatorRefresh+sec)), pauseEpisode(0), records(started(1, 0, 30*sec))),
			now:  40*sec + operatorRefresh,
			want: Decision{Action: ActRecordFailure, Command: CmdResume, Pause: true, Reason: ReasonRetryScheduled, RetryNum: 2, RequeueAfter: 60 * sec}},
		{name: "the resume failed (BR): retried as a command", u: running(set("status.phase", PhasePaused), pauseEpisode(0), records(started(1, 0, 30*sec)),
			set("status.logSubCommandStatuses.log-resume", map[string]any{"command": CmdResume, "phase": PhaseFailed,
				"conditions": []any{map[string]any{"type": "Failed", "status": "True", "reason": "LogResumeFailed",
					"message": "rpc error", "lastTransitionTime": RFC3339(t0.Add(32 * sec))}}})), now: 33 * sec,
			want: Decision{Action: ActRecordFailure, Command: CmdResume, Pause: true, Reason: ReasonRetryScheduled, RetryNum: 2, RequeueAfter: 60 * sec}},
		{name: "BR refused the resume over GC: LogGapUnrecoverable", u: running(set("status.phase", PhasePaused), pauseEpisode(0), records(started(1, 0, 30*sec)),
			set("status.logSubCommandStatuses.log-resume", map[string]any{"command": CmdResume, "phase": PhaseFailed,
				"conditions": []any{map[string]any{"type": "Failed", "status": "True", "reason": "LogResumeFailed",
					"message": "[BR:Backup:ErrBackupGCSafepointExceeded]GC safepoint 9 exceed TS 8", "lastTransitionTime": RFC3339(t0.Add(32 * sec))}}})),
			now: 33 * sec,
			want: Decision{Action: ActGiveUp, Command: CmdResume, Entry: CmdStart, Pause: true, Reason: ReasonRetrySkipped,
				ConditionReason: ReasonLogGapUnrecoverable, RetryNum: 2}},
		{name: "given up: nothing more", u: running(operatorPaused(t0), set("metadata.annotations", map[string]any{
			EpisodeAnnotation: Episode{Command: CmdResume, Pause: true, GaveUp: true}.String()})), kernel: task(true, true, t0, time.Time{}), want: none},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Now: t0.Add(tt.now), Backup: ViewBackup(tt.u), Config: defaults.DefaultConfig(), NonRetryable: DefaultNonRetryable,
				Kernel: tt.kernel, NoHandOff: tt.noHandOff}
			d := Decide(in)
			got := Decision{Action: d.Action, Command: d.Command, Pause: d.Pause, Reason: d.Reason, ConditionReason: d.ConditionReason,
				RetryNum: d.RetryNum, RequeueAfter: d.RequeueAfter, Entry: d.Entry, HandOffs: d.HandOffs,
				KeepEntry: d.KeepEntry}
			assert.Equal(t, tt.want, got, "message: %s", d.Message)
		})
	}
}

// The hand-off write: status.phase Paused and a log-resume entry that would make TiDB
// Operator skip the Backup marked RetryFailed; nothing else changes.
func TestApplyHandOff(t *testing.T) {
	for _, phase := range []string{"", PhaseComplete, PhaseFailed, PhaseRunning} {
		t.Run("log-resume "+phase, func(t *testing.T) {
			edits := []edit{operatorPaused(t0), pauseEpisode(0), records(pending(1, 0, 30*time.Second))}
			if phase != "" {
				edits = append(edits, entry(CmdResume, phase))
			}
			u := running(edits...)
			before := u.DeepCopy()
			d := Decision{Action: ActHandOff, Command: CmdResume, Pause: true, RetryNum: 1, KernelReason: "kernel: store 4: disk full"}
			require.NoError(t, Apply(u, d, t0.Add(30*time.Second)))
			assert.Equal(t, PhasePaused, str(u.Object, "status", "phase"))
			wantResume := map[string]string{"": "", PhaseComplete: PhaseRetryFailed, PhaseFailed: PhaseRetryFailed, PhaseRunning: PhaseRunning}[phase]
			assert.Equal(t, wantResume, str(u.Object, "status", "logSubCommandStatuses", CmdResume, "phase"))
			b := ViewBackup(u)
			require.Len(t, b.Records, 1)
			assert.Equal(t, t0.Add(30*time.Second), *b.Records[0].RealRetryAt)
			assert.Equal(t, "kernel: store 4: disk full", b.Records[0].OriginalReason)
			assert.Equal(t, &Episode{Command: CmdResume, Pause: true}, b.Episode)
			assert.Equal(t, before.Object["spec"], u.Object["spec"], "the user's spec is never written")
			assert.Equal(t, before.Object["status"].(map[string]any)["logSubCommandStatuses"].(map[string]any)[CmdStart],
				u.Object["status"].(map[string]any)["logSubCommandStatuses"].(map[string]any)[CmdStart], "log-start's entry stays TiDB Operator's")
		})
	}
}

// After MaxHandOffs overwritten hand-offs the episode gives up: our verdict on log-start,
// a message that says what TiDB Operator did and what to do, and nothing more to decide,
// also once TiDB Operator's next error-pause write lands over it.
func TestHandOffOverwrittenGivesUpOnce(t *testing.T) {
	u := running(operatorPaused(t0.Add(31*time.Second)), pauseEpisode(MaxHandOffs-1), records(started(1, 0, 30*time.Second)))
	in := Input{Now: t0.Add(40 * time.Second), Backup: ViewBackup(u), Config: defaults.DefaultConfig()}
	d := Decide(in)
	require.Equal(t, ActGiveUp, d.Action)
	require.NoError(t, Apply(u, d, in.Now))
	b := ViewBackup(u)
	assert.Equal(t, PhaseFailed, b.Phase)
	assert.Equal(t, ReasonHandOffOverwritten, b.Entries[CmdStart].Failed.Reason)
	assert.Contains(t, b.Entries[CmdStart].Failed.Message, fmt.Sprintf("overwrote all %d hand-offs", MaxHandOffs))
	assert.Contains(t, b.Entries[CmdStart].Failed.Message, "spec.logSubcommand to log-pause")
	assert.True(t, b.Episode.GaveUp && b.Episode.Pause)
	in.Backup, in.Now = b, in.Now.Add(time.Hour)
	assert.Equal(t, ActNone, Decide(in).Action, "decided once")
	operatorPaused(in.Now)(u)
	in.Backup = ViewBackup(u)
	assert.Equal(t, ActNone, Decide(in).Action, "TiDB Operator's record over ours changes nothing")
}

// A pause give-up marks the running log-start Failed with our reason, and the message
// tells the user what to do.
func TestApplyGapGiveUp(t *testing.T) {
	u := running(operatorPaused(t0), pauseEpisode(0), records(pending(1, 0, 30*time.Second)))
	in := Input{Now: t0.Add(30 * time.Second), Backup: ViewBackup(u), Config: defaults.DefaultConfig(), Kernel: task(true, true, t0, t0.Add(time.Second))}
	d := Decide(in)
	require.Equal(t, ActGiveUp, d.Action)
	require.NoError(t, Apply(u, d, in.Now))
	b := ViewBackup(u)
	assert.Equal(t, PhaseFailed, b.Phase)
	assert.Equal(t, PhaseFailed, b.Entries[CmdStart].Phase)
	assert.Equal(t, ReasonLogGapUnrecoverable, b.Entries[CmdStart].Failed.Reason)
	assert.Contains(t, b.Entries[CmdStart].Failed.Message, "has reached the task's checkpoint ("+RFC3339(t0)+", ts ")
	assert.Contains(t, b.Entries[CmdStart].Failed.Message, "take a full backup, and start a new log backup")
	assert.True(t, b.Episode.GaveUp && b.Episode.Pause)
	in.Backup, in.Now = b, in.Now.Add(time.Hour)
	assert.Equal(t, ActNone, Decide(in).Action, "decided once")
}

// The make stress failure of 2026-12-05, written out: after the one write that sets the
// stale record back and ends the episode, there is nothing left to do (no new pause, no
// second resume).
func TestStaleRecordAfterAMovedCheckpointComesToRest(t *testing.T) {
	sec := time.Second
	u := running(resumed(t0.Add(35*sec)), operatorPaused(t0.Add(36*sec)), pauseEpisode(0), records(started(1, 0, 30*sec)),
		set("status.logCheckpointTs", strconv.FormatUint(kernel.TSO(t0.Add(36*sec)), 10)))
	now := t0.Add(36*sec + errorPausedCooldown)
	in := Input{Now: now, Backup: ViewBackup(u), Config: defaults.DefaultConfig(), NonRetryable: DefaultNonRetryable}
	d := Decide(in)
	require.Equal(t, ActPutBack, d.Action, d.Message)
	require.NoError(t, Apply(u, d, now))
	b := ViewBackup(u)
	assert.Nil(t, b.Episode, "the episode ended")
	assert.Equal(t, PhaseRunning, b.Phase)
	in.Backup, in.Now = b, now.Add(sec)
	assert.Equal(t, ActNone, Decide(in).Action, "nothing left to do")
	assert.Len(t, b.Records, 1, "no new record")
}
