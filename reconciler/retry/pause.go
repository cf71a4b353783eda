package retry

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
)

// A running log backup (log-start done: status.commitTs set) can stop by itself: TiKV
// pauses the task after a persistent error (storage full or unreachable, expired
// credentials, too much lag) and records the pause, severity ERROR, in PD. Nothing
// resumes it. This file decides about such pauses, under the Backup's retry policy:
//
//   - detect the pause: from the kernel probe (the pause key; it tells an error pause
//     from an operator's pause) or, without it, from TiDB Operator's own record (v1.6.4+:
//     log-start RetryFailed, reason LogBackupErrorPaused);
//   - record it as a failed attempt of a pause episode (Episode.Pause, command
//     log-resume) and wait the backoff;
//   - when due, hand the resume to TiDB Operator: status.phase Paused makes it derive
//     log-resume and run backup-<name>-log-resume, so that BR makes its own checks;
//   - a resume that fails (its entry Failed, or its Job) is retried as any command;
//   - the episode closes once the task runs again and its checkpoint has moved past the
//     moment of the resume; a pause after a resume and before that is the next attempt;
//   - give up early, LogGapUnrecoverable, once the GC safe point has reached the task's
//     checkpoint: BR would refuse the resume, and the PITR window already has a gap.
//
// decidePutBack handles the other way a running log backup is marked stopped while it
// is not: TiDB Operator's tracker counts a PD it cannot read as a missing task.

// MaxHandOffs bounds the hand-offs of one resume: when that many were all overwritten,
// the episode gives up (ReasonHandOffOverwritten) instead of saying "handed off" while
// nothing runs (see decideLostHandOff).
const MaxHandOffs = 6

// Reasons TiDB Operator's tracker (v1.6.4+) writes about a running log backup.
const (
	operatorErrorPaused  = "LogBackupErrorPaused"
	operatorTaskNotFound = "LogBackupTaskNotFound"
	// operatorStateQueryFailed (after v1.6.6, tidb-operator#6950): TiDB Operator could
	// not read the task from PD. It says nothing about the task, so nothing is decided on
	// it: the reconciler waits for TiDB Operator's next word (see unknownToOperator).
	operatorStateQueryFailed = "LogBackupStateQueryFailed"
)

const (
	// operatorRefresh is how long TiDB Operator's tracker reuses a reading of PD
	// (refreshCheckpointTsPeriod in pkg/backup/backup/backup_tracker.go). Its report of
	// a pause written within this time after a resume may rest on a reading from before
	// the resume, so only a later one counts as a new pause.
	operatorRefresh = time.Minute
	// handOffQuiet: a hand-off is written only once TiDB Operator has not written the
	// Backup for this long (see quietSince).
	handOffQuiet = 2 * time.Second
	// handOffBackoff is the least time between a hand-off and the next after it was lost;
	// it doubles with each loss, up to maxHandOffBackoff.
	handOffBackoff    = 2 * time.Second
	maxHandOffBackoff = 16 * time.Second
	// taskNotFoundCooldown: a running log backup marked LogBackupTaskNotFound is put back
	// at most once in this time; a false failure that comes back at once means TiDB
	// Operator still cannot read PD.
	taskNotFoundCooldown = time.Hour
	// errorPausedCooldown: a stale LogBackupErrorPaused is put back at most once in this
	// time, longer than TiDB Operator reuses a reading of PD.
	errorPausedCooldown = operatorRefresh + 30*time.Second
)

// gcRefusals are how BR reports a resume refused because GC passed the checkpoint.
var gcRefusals = []string{"ErrBackupGCSafepointExceeded", "GC safepoint", "txn safe point"}

// lagLimitPauses are how TiDB's log backup advancer words the pause it puts on a task whose
// checkpoint lag passed tidb_advancer_check_point_lag_limit (default 48h; tidb PR #51441,
// a system variable since PR #62680): its tick error "check point lagged too large", its
// log "checkpoint lag is too large", and the pause message ("the lag is too huge"). A
// resume is paused again at the next tick until the limit is raised, so such a pause is
// recorded and never resumed. Read in TiDB's sources and reports, never run here (TiDB is
// not served by the module proxy): matched as loosely as these wordings allow.
var lagLimitPauses = []string{"lagged too large", "lag is too large", "lag is too huge", "lag too large", "lag too huge",
	"check_point_lag_limit", "CheckPointLagLimit"}

// lagLimitMessage tells what a lag-limit pause needs instead of a resume.
func lagLimitMessage(task, reason string) string {
	return fmt.Sprintf("not resumed: TiDB paused the task because its checkpoint lag passed the advancer's limit, and a "+
		"resume would be paused again at once. To recover: raise the limit (SET GLOBAL tidb_advancer_check_point_lag_limit "+
		"= '72h', or more than the lag), then resume the task (br log resume --task-name %s); the checkpoint-lag alerts keep "+
		"firing until then. If the lag is past what the PITR window needs, stop this log backup instead, take a full "+
		"backup and start a new one; paused by: %s", task, LastError(reason))
}

// pauseSignal is a report that a running task is paused by an error.
type PauseSignal struct {
	Source  string // who reports it
	Message string // BR's error, as exact as the source knows it
	at      time.Time
	task    *kernel.Task // set when the kernel probe is the source
}

// pauseOf returns the report of an error pause, if any, and whether the kernel probe
// answered. The probe, when it answered, is the truth: it tells an operator's pause
// (never touched) from an error pause, which TiDB Operator v1.6.4 to v1.6.6 cannot (they
// take every severity but MANUAL for an error; BR writes REGULAR_OPERATION).
func PauseOf(in Input) (*PauseSignal, bool) {
	b := in.Backup
	if k := in.Kernel; k != nil && k.Err == nil && k.Task != nil {
		t := k.Task
		if !t.Exists || !t.PausedByError {
			return nil, true
		}
		msg := t.ErrorMessage()
		if msg == "" {
			msg = "paused by an error; the cluster gives no message"
		}
		return &PauseSignal{Source: "the cluster (PD)", Message: truncate("kernel: " + msg), at: k.At, task: t}, true
	}
	if !operatorMarksPaused(b) {
		return nil, false
	}
	c := b.Entries[CmdStart].Conds[PhaseRetryFailed]
	// The whole status's condition is renewed each time TiDB Operator moves the phase to
	// RetryFailed; the entry's only when its message changes.
	at := c.Time
	if sc, ok := b.Conds[PhaseRetryFailed]; ok && sc.Time.After(at) {
		at = sc.Time
	}
	return &PauseSignal{Source: "TiDB Operator", Message: JoinReason(c.Reason, c.Message), at: at}, false
}

// decidePause decides about a running log backup under a pause episode, or one whose task
// is paused by an error. handled is false when the generic command rules apply instead.
func decidePause(in Input, cmd string) (d Decision, handled bool) {
	b := in.Backup
	if b.CommitTs == "" || (cmd != CmdStart && cmd != CmdResume) {
		return none, false
	}
	sig, _ := PauseOf(in)
	ep := b.Episode
	if ep != nil && !ep.Pause {
		if sig == nil || cmd != CmdStart || (ep.Command == CmdStart && !commandSucceeded(b, CmdStart, in.Job)) {
			return none, false
		}
		// An episode of another command that the task's running has ended: the pause
		// opens its own, replacing that one in the same write.
		ep = nil
	}
	if ep != nil && ep.Pause && !ep.GaveUp && len(EpisodeRecords(b.Records)) == 0 {
		ep = nil // its records are gone (edited away): as if there were none
	}
	if e := b.Entries[CmdStart]; ep != nil && e.Phase == PhaseFailed && e.Failed != nil && ownFailedReason(e.Failed.Reason) {
		// Our verdict stands until someone acts on the Backup.
		return nothing("log-start was marked failed by this reconciler (%s)", JoinReason(b.Entries[CmdStart].Failed.Reason, b.Entries[CmdStart].Failed.Message)), true
	}
	if ep == nil {
		if sig == nil || cmd != CmdStart {
			return none, false
		}
		return pauseFailure(in, sig), true
	}
	if ep.GaveUp {
		// A pause recorded without a resume (NoHandOff): once the task runs again (someone
		// resumed it), the episode ends, and the next pause is recorded again.
		if k := in.Kernel; ep.Pause && kernelAnswered(in) && k.Task.Exists && !k.Task.Paused {
			return closePause(in, Decision{Action: ActCloseEpisode, Command: CmdResume, Reason: ReasonRetrySucceeded, Pause: true,
				Message: "the log backup task runs again (resumed by someone else)"}), true
		}
		return nothing("the pause was recorded and not resumed; the record's episode ends once the task runs again"), true
	}
	recs := EpisodeRecords(b.Records)
	last := recs[len(recs)-1]
	if cmd == CmdResume {
		// status.phase is Paused: TiDB Operator runs log-resume, or holds it for a retry.
		if last.pending() {
			return asPause(decideDue(in, CmdResume, recs)), true
		}
		if f := detectFailure(b, CmdResume, in.Job); f != nil && last.RealRetryAt != nil && !b.Entries[CmdResume].latest().Before(*last.RealRetryAt) {
			f.what = "the resume failed: " + f.what
			return asPause(decideFailure(in, CmdResume, f)), true
		}
		return nothing("status.phase is Paused: TiDB Operator runs log-resume (resume %d); waiting for its result", last.RetryNum), true
	}
	if last.pending() {
		if sig == nil {
			return closePause(in, Decision{Action: ActCloseEpisode, Command: CmdResume, Reason: ReasonRetrySucceeded, Pause: true,
				Message: "the log backup task is no longer paused by an error (resumed by someone else) before its retry"}), true
		}
		return decideHandOff(in, recs, sig), true
	}
	if last.RealRetryAt == nil {
		return nothing("the last pause was recorded without a resume to follow"), true
	}
	started := *last.RealRetryAt
	resumedAt, resumed := resumeCompleted(b, started)
	if !resumed {
		if sig != nil && handOffLost(b, started) {
			return decideLostHandOff(in, ep, last), true
		}
		return nothing("resume %d was handed to TiDB Operator at %s; waiting for log-resume to complete", last.RetryNum, RFC3339(started)), true
	}
	return afterResume(in, sig, last, resumedAt), true
}

// The resume hand-off and why it converges.
//
// TiDB Operator derives log-resume only while status.phase is Paused. Its error-pause sync
// (v1.6.4+: SyncLogBackupState, for a running log backup whose task PD shows paused by an
// error) decides on the copy in its informer cache, then writes through its status
// updater, which re-reads that cache on every attempt (and after a conflict) and applies
// the condition it decided on: log-start RetryFailed, which sets status.phase RetryFailed.
// A sync of that kind that read the Backup before our hand-off and writes after it
// therefore overwrites Paused, and TiDB Operator, never having seen Paused, keeps
// deriving log-start. Such a sync is in flight right after each of its own writes (its
// write's event starts the next sync at once) and after each of ours.
//
// So a hand-off is written only when it can win (quietSince): TiDB Operator has not
// written the Backup for handOffQuiet. Its error-pause writes stamp status.timeSynced, and
// an overwrite also renews the RetryFailed conditions, so its last write is visible in
// the object. Never written in reaction to one of its writes, a hand-off races only a
// sync that its rate limiter or its resync happens to start in the same few milliseconds.
// A hand-off that still loses is seen at once (status.phase no longer Paused, no
// log-resume since), and written again after handOffBackoff (doubling) and the quiet
// time. Each attempt loses only to such an unlikely coincidence, so a few attempts
// suffice; after MaxHandOffs lost ones the episode gives up with
// ReasonHandOffOverwritten, and the Backup never says "handed off" while nothing runs.

// decideLostHandOff decides about a hand-off that TiDB Operator overwrote before it ran
// log-resume: hand off again once it can win, or give up after MaxHandOffs.
func decideLostHandOff(in Input, ep *Episode, last Record) Decision {
	lost := ep.HandOffs + 1 // every hand-off of this resume so far, the latest included
	if lost >= MaxHandOffs {
		return Decision{Action: ActGiveUp, Command: CmdResume, Entry: CmdStart, Pause: true, RetryNum: last.RetryNum,
			Reason: ReasonRetrySkipped, ConditionReason: ReasonHandOffOverwritten,
			Message: fmt.Sprintf("not resumed: TiDB Operator overwrote all %d hand-offs of resume %d (status.phase Paused) with "+
				"its record of the pause (status.phase RetryFailed), each written from a copy read before the hand-off, and "+
				"never ran log-resume; to resume through TiDB Operator, set spec.logSubcommand to log-pause, then back to "+
				"log-start; paused by: %s", lost, last.RetryNum, LastError(last.OriginalReason))}
	}
	at := last.RealRetryAt.Add(min(handOffBackoff<<ep.HandOffs, maxHandOffBackoff))
	if q := quietSince(in.Backup, in.Now); q.After(at) {
		at = q
	}
	if in.Now.Before(at) {
		return Decision{Action: ActWait, Command: CmdResume, RetryNum: last.RetryNum, RequeueAfter: at.Sub(in.Now),
			Message: fmt.Sprintf("hand-off %d of resume %d was overwritten by TiDB Operator; handing off again at %s", lost, last.RetryNum, RFC3339(at))}
	}
	return Decision{Action: ActHandOff, HandOffs: lost, Pause: true, Command: CmdResume,
		RetryNum: last.RetryNum, Reason: ReasonRetryStarted,
		Message: fmt.Sprintf("resume %d handed to TiDB Operator again (hand-off %d of at most %d): TiDB Operator overwrote "+
			"status.phase Paused with a write decided before the hand-off, before it ran log-resume", last.RetryNum, lost+1, MaxHandOffs)}
}

// quietSince is when a hand-off can win (see the comment above decideLostHandOff):
// handOffQuiet after TiDB Operator's last write that the Backup shows (the zero time if
// it shows none). Its times have whole seconds, hence the extra second; a time far ahead
// of now (a skewed clock) is not believed.
func quietSince(b *BackupView, now time.Time) time.Time {
	var last time.Time
	for _, t := range []time.Time{b.TimeSynced, b.Conds[PhaseRetryFailed].Time, b.Entries[CmdStart].Conds[PhaseRetryFailed].Time} {
		if t.After(last) && t.Before(now.Add(time.Minute)) {
			last = t
		}
	}
	if last.IsZero() {
		return last
	}
	return last.Add(time.Second + handOffQuiet)
}

// afterResume decides about a running log backup whose last resume completed at
// resumedAt: paused again (the next attempt), running again (the episode closes), or not
// known yet.
//
// TiDB Operator's tracker reuses a reading of PD for a minute (operatorRefresh), so right
// after a resume it usually marks the task paused again from a reading older than the
// resume ("stale"), and, the phase being RetryFailed then, it neither reads PD again on
// its own nor refreshes status.logCheckpointTs. Such a record is set back (log-start
// Complete, status.phase Running) once the tracker's reading must have expired, which
// makes TiDB Operator read PD afresh: a task that is really paused again is then marked
// anew, with a new time.
func afterResume(in Input, sig *PauseSignal, last Record, resumedAt time.Time) Decision {
	b := in.Backup
	started := *last.RealRetryAt
	// Condition times have whole seconds: the resume happened before resumedAt+1s.
	after := resumedAt.Add(time.Second)
	settled := after.Add(errorPausedCooldown) // TiDB Operator's reading is then newer than the resume
	if sig != nil && (sig.task != nil && sig.at.After(after) || sig.task == nil && sig.at.After(after.Add(operatorRefresh))) {
		return pauseFailure(in, sig)
	}
	stale := operatorMarksPaused(b)
	if stale && in.Now.Before(settled) {
		return Decision{Action: ActWait, Command: CmdResume, RetryNum: last.RetryNum, RequeueAfter: settled.Sub(in.Now)}
	}
	if sig != nil && sig.task != nil {
		return nothing("the cluster's reading of the task predates resume %d; waiting for the next one", last.RetryNum)
	}
	at, ok := CheckpointTime(in)
	advanced := ok && at.After(started)
	closing := Decision{Action: ActCloseEpisode, Command: CmdResume, Reason: ReasonRetrySucceeded, Pause: true,
		Message: fmt.Sprintf("the log backup runs again after %d resumes: its checkpoint (%s) has passed the resume at %s",
			last.RetryNum, RFC3339(at), RFC3339(started))}
	switch {
	case stale && !kernelAnswered(in):
		// Set the stale record back and keep the episode: TiDB Operator then reads PD
		// afresh, and either marks the task paused again or refreshes its checkpoint.
		d := Decision{Action: ActPutBack, Pause: true, Command: CmdStart, Reason: ReasonPauseRecordOutdated,
			RetryNum: last.RetryNum, Message: fmt.Sprintf("TiDB Operator's record of the pause predates the resume completed at %s "+
				"(it reuses a reading of PD for a minute): log-start set back to Complete and status.phase to Running, so that "+
				"it reads PD afresh", RFC3339(resumedAt))}
		if advanced {
			// The checkpoint moved too: the same write ends the episode. Closing it first
			// would leave the stale record to read as a new pause, a new episode and a
			// second resume of a running task (seen under make stress, 2026-12-05).
			d.Pause = false
			d.Message += "; " + closing.Message
		}
		return d
	case advanced:
		return closePause(in, closing)
	}
	return nothing("resume %d completed at %s; waiting for the task's checkpoint to pass it", last.RetryNum, RFC3339(resumedAt))
}

// operatorMarksPaused reports TiDB Operator's record of an error pause on the running
// log-start (status.phase and the entry RetryFailed, reason LogBackupErrorPaused).
func operatorMarksPaused(b *BackupView) bool {
	e := b.Entries[CmdStart]
	return b.Phase == PhaseRetryFailed && e.Phase == PhaseRetryFailed && e.Conds[PhaseRetryFailed].Reason == operatorErrorPaused
}

func kernelAnswered(in Input) bool {
	return in.Kernel != nil && in.Kernel.Err == nil && in.Kernel.Task != nil
}

// closePause ends an episode (a pause episode, or one of a command other than the
// current). When, with the episode gone, there is something else
// to write (TiDB Operator's record still calls the running task stopped, a failure of
// log-start), that decision is taken instead: it replaces the episode in the same write,
// so that deciding again on the result leaves nothing to write.
func closePause(in Input, d Decision) Decision {
	b := *in.Backup
	b.Episode = nil
	next := in
	next.Backup = &b
	switch d2 := Decide(next); d2.Action {
	case ActRecordFailure, ActGiveUp, ActRecover, ActPutBack:
		d2.Message = d.Message + "; " + d2.Message
		return d2
	}
	return d
}

// asPause marks a decision of the command rules as part of a pause episode: a give-up
// marks the running log-start failed, not the log-resume entry.
func asPause(d Decision) Decision {
	d.Pause = true
	if d.Action == ActGiveUp {
		d.Entry, d.KeepEntry = CmdStart, false
	}
	return d
}

// pauseFailure records a pause as a failed attempt of the pause episode, or gives up.
func pauseFailure(in Input, sig *PauseSignal) Decision {
	f := &failure{what: "the log backup task was paused by an error (reported by " + sig.Source + ")", reason: sig.Message}
	// Record and alert only: one record, no retry, nothing else of the Backup touched. The
	// episode ends once the task runs again (see decidePause).
	recordOnly := func(message string) Decision {
		d := asPause(decideFailure(in, CmdResume, f))
		if d.Record != nil {
			d.Record.ExpectedRetryAt = nil
		}
		d.Action, d.Reason, d.ConditionReason, d.RequeueAfter = ActGiveUp, ReasonRetrySkipped, "", 0
		d.Entry, d.KeepEntry = "", true
		d.Message = message
		return d
	}
	if in.NoHandOff {
		return recordOnly(fmt.Sprintf("not resumed: this TiDB Operator cannot run log-resume (its Backup CRD has no spec.logSubcommand, "+
			"as before v1.6.1); resume the task with br log resume --task-name %s; paused by: %s", in.Backup.Name, LastError(f.reason)))
	}
	if matchesAny(f.reason, lagLimitPauses) != "" {
		return recordOnly(lagLimitMessage(in.Backup.Name, f.reason))
	}
	if t := sig.task; t != nil && t.GCPassedCheckpoint() {
		d := asPause(decideFailure(in, CmdResume, f))
		if d.Record != nil {
			d.Record.ExpectedRetryAt = nil
		}
		d.Action, d.Reason, d.ConditionReason, d.RequeueAfter = ActGiveUp, ReasonRetrySkipped, ReasonLogGapUnrecoverable, 0
		d.Entry, d.KeepEntry = CmdStart, false
		d.Message = gapMessage(gcDetail(t))
		return d
	}
	return asPause(decideFailure(in, CmdResume, f))
}

// decideHandOff handles a recorded pause whose resume has not started: give up if the
// limits ran out or the GC safe point passed the checkpoint, wait, or hand it off.
func decideHandOff(in Input, recs []Record, sig *PauseSignal) Decision {
	last := recs[len(recs)-1]
	d := asPause(decideDue(in, CmdResume, recs))
	switch d.Action {
	case ActGiveUp, ActWait:
		return d
	}
	if t := sig.task; t != nil && t.GCPassedCheckpoint() {
		return Decision{Action: ActGiveUp, Command: CmdResume, Entry: CmdStart, Pause: true, RetryNum: last.RetryNum,
			Reason: ReasonRetrySkipped, ConditionReason: ReasonLogGapUnrecoverable, Message: gapMessage(gcDetail(t))}
	}
	// Not in reaction to one of TiDB Operator's writes: its next sync, already under way,
	// would overwrite the hand-off (see decideLostHandOff).
	if q := quietSince(in.Backup, in.Now); in.Now.Before(q) {
		return Decision{Action: ActWait, Command: CmdResume, RetryNum: last.RetryNum, RequeueAfter: q.Sub(in.Now),
			Message: "TiDB Operator wrote the Backup less than " + defaults.FormatDuration(handOffQuiet) + " ago; handing off once it is quiet"}
	}
	// The Job of the command TiDB Operator ran last (log-start's, or an earlier
	// log-resume's) is not in the way: TiDB Operator replaces a finished log-resume Job.
	policy, _, _ := policyFor(in, CmdResume, "")
	return Decision{Action: ActHandOff, Pause: true, Command: CmdResume, RetryNum: last.RetryNum,
		Reason: ReasonRetryStarted, KernelReason: kernelReason(sig),
		Message: fmt.Sprintf("resume %d of %d handed to TiDB Operator (status.phase Paused, so it runs log-resume); the task was paused by: %s",
			last.RetryNum, policy.MaxRetryTimes, LastError(last.OriginalReason))}
}

func kernelReason(sig *PauseSignal) string {
	if sig.task == nil {
		return ""
	}
	return sig.Message
}

// resumeCompleted returns when log-resume completed, if it did at or after t.
func resumeCompleted(b *BackupView, t time.Time) (time.Time, bool) {
	e := b.Entries[CmdResume]
	c, ok := e.Conds[PhaseComplete]
	if e.Phase != PhaseComplete || !ok || c.Time.Before(t) {
		return time.Time{}, false
	}
	return c.Time, true
}

// handOffLost reports a hand-off TiDB Operator never saw: status.phase is no longer
// Paused and no log-resume ran since it (the entry has no condition that new).
func handOffLost(b *BackupView, t time.Time) bool {
	return b.Phase != PhasePaused && b.Entries[CmdResume].latest().Before(t)
}

// checkpointTime is the task's checkpoint as a time: the kernel probe's reading, else
// TiDB Operator's status.logCheckpointTs.
func CheckpointTime(in Input) (time.Time, bool) {
	if k := in.Kernel; k != nil && k.Err == nil && k.Task != nil && k.Task.Exists && k.Task.CheckpointTS > 0 {
		return kernel.PhysicalTime(k.Task.CheckpointTS), true
	}
	if ts, err := strconv.ParseUint(in.Backup.LogCheckpointTs, 10, 64); err == nil && ts > 0 {
		return kernel.PhysicalTime(ts), true
	}
	return time.Time{}, false
}

func gcDetail(t *kernel.Task) string {
	return fmt.Sprintf("PD's GC safe point (%s, ts %d) has reached the task's checkpoint (%s, ts %d)",
		RFC3339(kernel.PhysicalTime(t.GCSafePoint)), t.GCSafePoint, RFC3339(kernel.PhysicalTime(t.CheckpointTS)), t.CheckpointTS)
}

// gapMessage tells the user what a LogGapUnrecoverable give-up means and what to do.
func gapMessage(detail string) string {
	return "not resumed: a resume can no longer be loss-free (" + detail + "). The PITR window now has a gap from the " +
		"task's checkpoint to now. To recover: stop this log backup (spec.logSubcommand: log-stop), take a full " +
		"backup, and start a new log backup."
}

// decidePutBack puts back a running log backup that TiDB Operator marked stopped while the
// kernel probe shows its task present (see putBack).
func decidePutBack(in Input, cmd string) Decision {
	if ep := in.Backup.Episode; ep != nil && (ep.Command == CmdStart || ep.Pause) {
		return none // the put-back ends an episode of another command, in the same write
	}
	return putBack(in, cmd)
}

// putBack is decidePutBack without regard to the episode (which it ends). Two false
// verdicts of TiDB Operator's tracker are undone, since nothing else undoes them:
//
//   - Failed, LogBackupTaskNotFound: v1.6.5 and v1.6.6 count a PD they cannot read as a
//     missing task. Put back with a record, at most once per taskNotFoundCooldown: if it
//     comes straight back, TiDB Operator still cannot read PD, and the Backup is left
//     Failed with a Warning that says so (one write, no record).
//   - RetryFailed, LogBackupErrorPaused, while the task is not paused at all: a report
//     from a reading of PD older than a resume (the tracker reuses one for a minute).
//     Put back without a record, at most once per errorPausedCooldown, longer than the
//     tracker's reuse, so the next reading it makes is a fresh one.
func putBack(in Input, cmd string) Decision {
	b := in.Backup
	k := in.Kernel
	if cmd != CmdStart || b.CommitTs == "" || k == nil || k.Err != nil || k.Task == nil || !k.Task.Exists {
		return none
	}
	e := b.Entries[CmdStart]
	var reason Condition
	var cooldown time.Duration
	switch {
	case e.Phase == PhaseFailed && e.Failed != nil && e.Failed.Reason == operatorTaskNotFound && !k.Task.PausedByError:
		reason, cooldown = *e.Failed, taskNotFoundCooldown
	case e.Phase == PhaseRetryFailed && e.Conds[PhaseRetryFailed].Reason == operatorErrorPaused && !k.Task.Paused:
		// A task paused by an operator stays as TiDB Operator calls it: it is paused.
		reason, cooldown = e.Conds[PhaseRetryFailed], errorPausedCooldown
	default:
		return none
	}
	now := in.Now
	// Only a reading of PD taken after TiDB Operator wrote its record can contradict it:
	// the probe reuses a reading for its cache TTL, and an older one may predate the pause
	// or the loss the record reports (seen under load: a manual pause "put back" from a
	// reading taken before it). Its times have whole seconds, hence the extra second.
	if !k.At.After(reason.Time.Add(time.Second)) {
		return Decision{Action: ActWait, Command: CmdStart, RequeueAfter: time.Second,
			Message: "the cluster's reading of the task predates TiDB Operator's record; waiting for a newer one"}
	}
	if last, ok := e.Conds[PhaseComplete]; ok && last.Reason == ReasonRecoveredFromKernel && now.Sub(last.Time) < cooldown {
		if reason.Reason == operatorErrorPaused {
			return Decision{Action: ActWait, Command: CmdStart, RequeueAfter: last.Time.Add(cooldown).Sub(now)}
		}
		if b.Episode != nil {
			return none
		}
		return Decision{Action: ActGiveUp, Command: CmdStart, KeepEntry: true, Reason: ReasonRetrySkipped,
			Message: fmt.Sprintf("TiDB Operator marked the running log backup Failed (%s) again right after it was put back at %s, "+
				"while the cluster shows its task (%s): TiDB Operator most likely cannot read PD (check its access to the PD "+
				"service, port 2379). Left as TiDB Operator wrote it.", reason.Reason, RFC3339(last.Time), k.Task.Summary())}
	}
	msg := fmt.Sprintf("TiDB Operator marked the running log backup %s (%s), but the cluster shows its task: %s; "+
		"log-start set back to Complete and status.phase to Running", e.Phase, reason.Reason, k.Task.Summary())
	d := Decision{Action: ActPutBack, Command: CmdStart, Reason: ReasonRecoveredFromKernel, Message: msg, RetryNum: 1}
	if reason.Reason == operatorTaskNotFound {
		d.Record = &Record{RetryNum: 1, DetectFailedAt: now, ExpectedRetryAt: &now, RealRetryAt: &now,
			RetryReason: putBackReason, OriginalReason: JoinReason(reason.Reason, reason.Message)}
	}
	return d
}

// putBackReason is the retryReason of a put-back record.
const putBackReason = "log-start was marked stopped by TiDB Operator while its task runs; put back from the kernel state"
