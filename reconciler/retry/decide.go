package retry

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
)

// Input is everything a decision depends on.
type Input struct {
	Now    time.Time
	Backup *BackupView
	// Job is the current command's Job (nil: none).
	Job *JobView
	// LivePods names the pods of the current command's Job that have not terminated.
	// The reconciler lists them only when it is about to act; nil reads as "none".
	LivePods []string
	// Config supplies the defaults for missing policy fields.
	Config defaults.Config
	// NonRetryable lists substrings of failure reasons and messages that retrying cannot fix.
	NonRetryable []string
	// Kernel is the command's log backup task as the cluster records it, read just before
	// a retry would start (nil: the kernel probe is off, or has not answered yet).
	Kernel *kernel.Result
	// NoHandOff: TiDB Operator cannot run log-resume; a pause is recorded, not resumed.
	NoHandOff bool
}

// Action is what a Decision asks for.
type Action string

// Actions. Those that Write the Backup do it with exactly one update; DeleteJob deletes
// the command's Job; the others change nothing.
const (
	// ActNone: nothing to do; the Decision's Message says why.
	ActNone Action = "None"
	// ActWait: a retry is scheduled; come back after RequeueAfter. Nothing is written.
	ActWait Action = "Wait"
	// ActRecordFailure appends Record and opens (or continues) the episode.
	ActRecordFailure Action = "RecordFailure"
	// ActGiveUp marks the command Failed with Reason (appending Record, if set).
	ActGiveUp Action = "GiveUp"
	// ActDeleteJob deletes the old Job (foreground) before a retry.
	ActDeleteJob Action = "DeleteJob"
	// ActAwaitCleanup waits for the old Job or its pods to go; nothing is written.
	ActAwaitCleanup Action = "AwaitCleanup"
	// ActStartRetry sets realRetryAt and hands the command back to TiDB Operator.
	ActStartRetry Action = "StartRetry"
	// ActHandOff sets realRetryAt and hands a resume to TiDB Operator by setting
	// status.phase to Paused (it then runs log-resume), instead of marking the entry
	// RetryFailed (pause.go).
	ActHandOff Action = "HandOff"
	// ActCloseEpisode ends the episode (the command succeeded, or was re-run by others).
	ActCloseEpisode Action = "CloseEpisode"
	// ActRecover ends the episode without a re-run: the cluster's own record shows that
	// the failed log-start registered its task, so the command did its work. It sets
	// realRetryAt, the entry Complete and status.commitTs to the task's start ts.
	ActRecover Action = "Recover"
	// ActPutBack undoes a false verdict of TiDB Operator on a running log backup
	// (putBack, afterResume): log-start Complete and status.phase Running again. It
	// completes no retry record (it may bring its own).
	ActPutBack Action = "PutBack"
	// ActAwaitKernel waits for the kernel probe to answer before a retry; nothing is
	// written. The probe's answer enqueues the Backup again.
	ActAwaitKernel Action = "AwaitKernel"
)

// Writes reports an action that writes the Backup.
func (a Action) Writes() bool {
	switch a {
	case ActRecordFailure, ActGiveUp, ActStartRetry, ActHandOff, ActCloseEpisode, ActRecover, ActPutBack:
		return true
	}
	return false
}

// Acts reports an action that changes the cluster: a write, or the deletion of the old Job.
// Any other decision is at rest until time or the cluster moves.
func (a Action) Acts() bool { return a.Writes() || a == ActDeleteJob }

// Reasons used in conditions and Events.
const (
	ReasonRetryScheduled      = "RetryScheduled"
	ReasonRetryStarted        = "RetryStarted"
	ReasonRetrySucceeded      = "RetrySucceeded"
	ReasonRetryExhausted      = "RetryExhausted"
	ReasonRetrySkipped        = "RetrySkipped"
	ReasonRetryLimitExceeded  = "RetryLimitExceeded"
	ReasonRetryTimeout        = "RetryTimeout"
	ReasonNotRetryable        = "NotRetryable"
	ReasonInvalidRetryPolicy  = "InvalidRetryPolicy"
	ReasonCommitTsSet         = "CommitTsSet"
	ReasonEpisodeReset        = "EpisodeReset"
	ReasonRecoveredFromKernel = "RecoveredFromKernel"
	ReasonLogGapUnrecoverable = "LogGapUnrecoverable"
	ReasonPauseRecordOutdated = "PauseRecordOutdated"
	// ReasonHandOffOverwritten: TiDB Operator overwrote every resume hand-off (pause.go).
	ReasonHandOffOverwritten = "HandOffOverwritten"
	// ReasonCredentialsRejected: the storage refused the task's credentials
	// (credentialErrors); they must be rotated and the log backup started again.
	ReasonCredentialsRejected = "CredentialsRejected"
)

const (
	// maxOriginalReasonLength bounds what a record keeps of BR's message.
	maxOriginalReasonLength = 1024
	// cleanupRequeue is how often the old Job and its pods are checked while they go;
	// their deletion events usually come first.
	cleanupRequeue = 5 * time.Second
	// foreignJobRequeue is how often a Job this Backup does not control is looked at.
	foreignJobRequeue = 30 * time.Second
)

// Decision is the outcome of Decide.
type Decision struct {
	Action  Action
	Command string
	// RequeueAfter is when to look again (Wait, AwaitCleanup, RecordFailure).
	RequeueAfter time.Duration
	// Record is appended by RecordFailure and, when set, by GiveUp.
	Record *Record
	// Reason is the condition reason of GiveUp and the Event reason of every action.
	Reason string
	// ConditionReason is the reason written into the Failed condition on GiveUp.
	ConditionReason string
	// Message explains the decision (condition message, Event note).
	Message string
	// RetryNum is the attempt a decision is about.
	RetryNum int64
	// KernelReason, when set, replaces the last record's originalReason on StartRetry:
	// the cluster's account of the failure is better than the Job's.
	KernelReason string
	// RecordNote, when set, is added to the last record's retryReason on StartRetry and
	// Recover: what the kernel probe found, or that it could not look.
	RecordNote string
	// CommitTs is written to status.commitTs by Recover.
	CommitTs string
	// KeepEntry: GiveUp leaves the command's entry and status.phase as they are, and
	// writes only its record and the episode. Set when the entry already tells the
	// failure in someone else's words that must stay visible (see keepEntry).
	KeepEntry bool
	// Pause: the decision belongs to a pause episode (pause.go): the episode it writes
	// says so.
	Pause bool
	// Entry is the command entry GiveUp marks Failed, when not Command's: a pause episode
	// counts log-resume attempts but marks the running log-start failed, which is what
	// TiDB Operator and users read.
	Entry string
	// HandOffs is the hand-off count HandOff writes into the episode.
	HandOffs int
}

// none is the answer of a rule that does not apply (the next one is asked).
var none = Decision{Action: ActNone}

// nothing is a decision to do nothing, with the reason (explain shows it).
func nothing(format string, args ...any) Decision {
	return Decision{Action: ActNone, Message: fmt.Sprintf(format, args...)}
}

// Decide returns what to do about a Backup. It is a pure function of its input. A
// decision to do nothing says why in its Message.
func Decide(in Input) Decision {
	b := in.Backup
	switch {
	case b.Mode != defaults.BackupModeLog:
		return nothing("spec.backupMode is %q, not log; TiDB Operator's own retries apply to it", b.Mode)
	case b.Deleting:
		return nothing("the Backup is being deleted")
	case b.Phase == PhaseInvalid:
		return nothing("the Backup is Invalid (TiDB Operator rejected its spec)")
	}
	cmd, why := DeriveCommand(b)
	switch {
	case cmd == "":
		return nothing("the current command is unknown: %s", why)
	case unknownToOperator(b, cmd):
		return nothing("TiDB Operator could not read the task from PD (%s); its next reading decides", operatorStateQueryFailed)
	}
	if d, handled := decidePause(in, cmd); handled {
		return d
	}
	if d := decidePutBack(in, cmd); d.Action != ActNone {
		return d
	}
	ep := b.Episode
	if ep != nil && ep.Command == cmd {
		if commandSucceeded(b, cmd, in.Job) {
			return Decision{Action: ActCloseEpisode, Command: cmd, Reason: ReasonRetrySucceeded, Message: closeMessage(b, ep)}
		}
		if ep.GaveUp {
			if activePhase(b.Entries[cmd].Phase) && (in.Job == nil || in.Job.Failed == nil) {
				// Someone re-ran the command after we gave up: a fresh budget for it.
				return Decision{Action: ActCloseEpisode, Command: cmd, Reason: ReasonEpisodeReset,
					Message: cmd + " was re-run after the retries were spent; its retry budget starts again"}
			}
			why := "the retries were spent"
			if e := b.Entries[cmd]; e.Failed != nil {
				why += " (" + JoinReason(e.Failed.Reason, e.Failed.Message) + ")"
			}
			return nothing("%s gave up, %s; it gets a new retry budget if someone re-runs it", cmd, why)
		}
		if recs := EpisodeRecords(b.Records); len(recs) > 0 && recs[len(recs)-1].pending() {
			return decideDue(in, cmd, recs)
		}
	}
	// A failure of the current command comes before an episode of another command:
	// recording it replaces that episode, in the same write.
	f := detectFailure(b, cmd, in.Job)
	var left Decision // why decideFailure leaves the failure alone
	if f != nil {
		if left = decideFailure(in, cmd, f); left.Action != ActNone {
			return left
		}
	}
	if ep != nil && ep.Command != cmd && commandSucceeded(b, ep.Command, nil) {
		return closePause(in, Decision{Action: ActCloseEpisode, Command: ep.Command, Reason: ReasonRetrySucceeded, Message: closeMessage(b, ep)})
	}
	if f != nil {
		return left
	}
	e := b.Entries[cmd]
	switch {
	case e.Failed != nil && ownFailedReason(e.Failed.Reason):
		return nothing("%s was marked failed by this reconciler (%s)", cmd, JoinReason(e.Failed.Reason, e.Failed.Message))
	case cmd == CmdPause:
		return nothing("the log backup is paused on request (spec.logSubcommand: log-pause)")
	}
	phase := e.Phase
	if phase == "" {
		phase = "not started"
	}
	return nothing("%s is %s and nothing failed; a failure would be retried under the policy above", cmd, phase)
}

// unknownToOperator reports a command whose latest word from TiDB Operator is that it could
// not read the task from PD (operatorStateQueryFailed, whatever phase it came with): not a
// failure, not a missing task, not a pause, so there is nothing to decide until TiDB
// Operator reads PD again and says what it found. Its next write enqueues the Backup.
func unknownToOperator(b *BackupView, cmd string) bool {
	e := b.Entries[cmd]
	c, ok := e.Conds[e.Phase]
	return ok && c.Reason == operatorStateQueryFailed
}

// failure is a detected failed attempt.
type failure struct {
	what   string // for retryReason
	reason string // for originalReason and matching
	at     time.Time
}

// detectFailure finds a failed attempt of cmd: BR reported it (entry Failed), or the pod
// died (Job failed while the entry still says the command runs). An entry whose Failed
// condition this reconciler wrote is its own verdict on an attempt it already handled,
// never a new failure: reading it back as one is how a decision repeats itself forever.
func detectFailure(b *BackupView, cmd string, job *JobView) *failure {
	e := b.Entries[cmd]
	if e.Phase == PhaseFailed {
		if e.Failed != nil && ownFailedReason(e.Failed.Reason) {
			return nil
		}
		f := &failure{what: "BR reported an error"}
		if e.Failed != nil {
			f.reason = JoinReason(e.Failed.Reason, e.Failed.Message)
			f.at = e.Failed.Time
		}
		return f
	}
	if job != nil && job.Owned && job.Failed != nil && activePhase(e.Phase) {
		return &failure{
			what:   fmt.Sprintf("Job %s failed while the command was %s", job.Name, e.Phase),
			reason: JoinReason(job.Failed.Reason, job.Failed.Message),
			at:     job.Failed.Time,
		}
	}
	return nil
}

func JoinReason(reason, message string) string {
	s := reason
	if message != "" {
		if s != "" {
			s += ": "
		}
		s += message
	}
	return truncate(s)
}

// ownFailedReason reports the reasons this reconciler writes into a Failed condition
// (GiveUp's ConditionReason).
func ownFailedReason(reason string) bool {
	switch reason {
	case ReasonRetryLimitExceeded, ReasonRetryTimeout, ReasonNotRetryable, ReasonInvalidRetryPolicy, ReasonCommitTsSet,
		ReasonLogGapUnrecoverable, ReasonHandOffOverwritten, ReasonCredentialsRejected:
		return true
	}
	return false
}

// truncate bounds what a record keeps of a message.
func truncate(s string) string { return defaults.Truncate(s, maxOriginalReasonLength) }

// decideFailure handles a newly detected failure: record it and schedule the retry, or
// give up.
func decideFailure(in Input, cmd string, f *failure) Decision {
	b := in.Backup
	n, first := int64(1), in.Now
	if ep := b.Episode; ep != nil && ep.Command == cmd && !ep.GaveUp {
		if recs := EpisodeRecords(b.Records); len(recs) > 0 {
			n, first = recs[len(recs)-1].RetryNum+1, recs[0].DetectFailedAt
		}
	}
	rec := &Record{
		RetryNum:       n,
		DetectFailedAt: in.Now,
		RetryReason:    fmt.Sprintf("%s failed: %s", cmd, f.what),
		OriginalReason: f.reason,
	}
	giveUp := func(eventReason, condReason, msg string) Decision {
		return Decision{Action: ActGiveUp, Command: cmd, Record: rec, Reason: eventReason,
			ConditionReason: condReason, Message: msg, RetryNum: n, KeepEntry: keepEntry(b, cmd, condReason)}
	}
	lastErr := LastError(f.reason)

	policy, skipReason, skipMsg := policyFor(in, cmd, lastErr)
	switch {
	case skipReason != "":
		return giveUp(ReasonRetrySkipped, skipReason, skipMsg)
	case matchesAny(f.reason, gcRefusals) != "":
		return giveUp(ReasonRetrySkipped, ReasonLogGapUnrecoverable, gapMessage("BR refused the resume: "+lastErr))
	case matchesAny(f.reason, in.NonRetryable) != "":
		p := matchesAny(f.reason, in.NonRetryable)
		if slices.Contains(credentialErrors, p) {
			return giveUp(ReasonRetrySkipped, ReasonCredentialsRejected, credentialsMessage(cmd, p, lastErr))
		}
		return giveUp(ReasonRetrySkipped, ReasonNotRetryable,
			fmt.Sprintf("not retried: %q is an error retrying cannot fix; last error: %s", p, lastErr))
	case !f.at.IsZero() && n == 1 && in.Now.Sub(f.at) > policy.RetryTimeout:
		// A failure older than the whole retry window (for example from before this
		// server was installed) is left as it is.
		return nothing("%s failed at %s, longer ago than retryTimeout %s, so it is left as it is",
			cmd, RFC3339(f.at), defaults.FormatDuration(policy.RetryTimeout))
	case n > policy.MaxRetryTimes:
		return giveUp(ReasonRetryExhausted, ReasonRetryLimitExceeded,
			fmt.Sprintf("gave up after %d retries (maxRetryTimes %d); last error: %s", n-1, policy.MaxRetryTimes, lastErr))
	}
	delay, _ := policy.Delay(n) // n <= MaxRetryTimes, which validation bounds against overflow
	expected := in.Now.Add(delay)
	if expected.Sub(first) > policy.RetryTimeout {
		return giveUp(ReasonRetryExhausted, ReasonRetryTimeout,
			fmt.Sprintf("gave up after %d retries: retry %d would start %s after the first failure, past retryTimeout %s; last error: %s",
				n-1, n, defaults.FormatDuration(expected.Sub(first).Round(time.Second)), defaults.FormatDuration(policy.RetryTimeout), lastErr))
	}
	rec.ExpectedRetryAt = &expected
	return Decision{Action: ActRecordFailure, Command: cmd, Record: rec, RequeueAfter: delay, RetryNum: n,
		Reason: ReasonRetryScheduled,
		Message: fmt.Sprintf("retry %d of %d in %s (at %s); last error: %s",
			n, policy.MaxRetryTimes, defaults.FormatDuration(delay), expected.UTC().Format(time.RFC3339), lastErr)}
}

// decideDue handles a recorded failure whose retry has not started: wait, clean up the
// old Job, start the retry, or give up if the limits changed or ran out meanwhile.
func decideDue(in Input, cmd string, recs []Record) Decision {
	last := recs[len(recs)-1]
	lastErr := LastError(last.OriginalReason)
	giveUp := func(eventReason, condReason, msg string) Decision {
		return Decision{Action: ActGiveUp, Command: cmd, Reason: eventReason, ConditionReason: condReason,
			Message: msg, RetryNum: last.RetryNum, KeepEntry: keepEntry(in.Backup, cmd, condReason)}
	}
	policy, skipReason, skipMsg := policyFor(in, cmd, lastErr)
	switch {
	case skipReason != "":
		return giveUp(ReasonRetrySkipped, skipReason, skipMsg)
	case last.RetryNum > policy.MaxRetryTimes:
		return giveUp(ReasonRetryExhausted, ReasonRetryLimitExceeded,
			fmt.Sprintf("gave up after %d retries (maxRetryTimes %d); last error: %s", last.RetryNum-1, policy.MaxRetryTimes, lastErr))
	case in.Now.Sub(recs[0].DetectFailedAt) > policy.RetryTimeout:
		return giveUp(ReasonRetryExhausted, ReasonRetryTimeout,
			fmt.Sprintf("gave up after %d retries: %s passed since the first failure, past retryTimeout %s; last error: %s",
				last.RetryNum-1, defaults.FormatDuration(in.Now.Sub(recs[0].DetectFailedAt).Round(time.Second)),
				defaults.FormatDuration(policy.RetryTimeout), lastErr))
	case in.Now.Before(*last.ExpectedRetryAt):
		return Decision{Action: ActWait, Command: cmd, RetryNum: last.RetryNum, RequeueAfter: last.ExpectedRetryAt.Sub(in.Now)}
	}
	// Due. A re-run beside a live old pod collides on BR's lock: the old Job and its
	// pods must be gone first.
	if j := in.Job; j != nil {
		switch {
		case !j.Owned:
			return Decision{Action: ActAwaitCleanup, Command: cmd, RetryNum: last.RetryNum, RequeueAfter: foreignJobRequeue,
				Message: fmt.Sprintf("Job %s is not controlled by this Backup; waiting for it to go", j.Name)}
		case !j.Deleting:
			return Decision{Action: ActDeleteJob, Command: cmd, RetryNum: last.RetryNum, RequeueAfter: cleanupRequeue}
		default:
			return Decision{Action: ActAwaitCleanup, Command: cmd, RetryNum: last.RetryNum, RequeueAfter: cleanupRequeue,
				Message: fmt.Sprintf("waiting for Job %s to be deleted", j.Name)}
		}
	}
	if len(in.LivePods) > 0 {
		return Decision{Action: ActAwaitCleanup, Command: cmd, RetryNum: last.RetryNum, RequeueAfter: cleanupRequeue,
			Message: fmt.Sprintf("waiting for pods %s of the old Job to terminate", strings.Join(in.LivePods, ", "))}
	}
	return adjustToKernel(in, cmd, last, Decision{Action: ActStartRetry, Command: cmd, RetryNum: last.RetryNum, Reason: ReasonRetryStarted,
		Message: fmt.Sprintf("retry %d of %d started; previous attempt: %s", last.RetryNum, policy.MaxRetryTimes, lastErr)})
}

// consultKernel adjusts a due retry to what the cluster records about the task (when the
// kernel probe has answered): a log-start whose task exists and is not paused by an error
// did its work, so it is recovered, not re-run; a task paused by an error gives the record
// the cluster's error message; a probe that could not read PD is noted in the record, and
// the retry goes ahead as if there were no probe.
func adjustToKernel(in Input, cmd string, last Record, start Decision) Decision {
	k := in.Kernel
	if k == nil {
		return start
	}
	if k.Err != nil || k.Task == nil {
		start.RecordNote = fmt.Sprintf("the kernel state could not be read (%v), so the retry went ahead without it", k.Err)
		start.Message += "; " + start.RecordNote
		return start
	}
	task := k.Task
	switch {
	case !task.Exists:
		start.RecordNote = "kernel: " + task.Summary()
	case task.PausedByError:
		start.RecordNote = "kernel: " + task.Summary()
		if msg := task.ErrorMessage(); msg != "" {
			start.KernelReason = truncate("kernel: " + msg)
			start.Message = fmt.Sprintf("retry %d started; the cluster reports: %s", last.RetryNum, msg)
		}
	case cmd == CmdStart && task.StartTS == 0:
		start.RecordNote = "kernel: " + task.Summary() + ", but without a start ts to report as commitTs, so the retry went ahead"
	case cmd == CmdStart:
		note := fmt.Sprintf("recovered from the kernel state: %s, so log-start was not re-run", task.Summary())
		return Decision{Action: ActRecover, Command: cmd, RetryNum: last.RetryNum, Reason: ReasonRecoveredFromKernel,
			RecordNote: note, CommitTs: strconv.FormatUint(task.StartTS, 10),
			Message: fmt.Sprintf("log-start failed (%s) but its task is registered in the cluster: %s; status.commitTs set to %d, no re-run",
				LastError(last.OriginalReason), task.Summary(), task.StartTS)}
	default:
		start.RecordNote = "kernel: " + task.Summary()
	}
	return start
}

// policyFor returns the policy to enforce, or the condition reason and message of why
// this command cannot be retried whatever the count: a malformed policy, or a log-start
// whose task may already exist. Checked both when a failure is found and when its retry
// is due, since either can change in between.
func policyFor(in Input, cmd, lastErr string) (defaults.Policy, string, string) {
	b := in.Backup
	policy, errs := in.Config.Effective(b.Policy, b.KeepSchemaDefaults, PolicyPath)
	errs = append(b.PolicyErrs, errs...)
	switch {
	case len(errs) > 0:
		return policy, ReasonInvalidRetryPolicy,
			fmt.Sprintf("not retried: the retry policy is malformed (%s); last error: %s", errs.ToAggregate().Error(), lastErr)
	case cmd == CmdStart && b.CommitTs != "":
		return policy, ReasonCommitTsSet, "not retried: log-start is not re-run once status.commitTs is set, since the log " +
			"backup task may already exist; last error: " + lastErr
	}
	return policy, "", ""
}

// keepEntry reports a give-up that must not rewrite the command's entry: a log-start
// whose status.commitTs is set is a running log backup, and whatever marked it failed
// or retryable after that (BR through the backup-manager, or TiDB Operator's tracker
// with LogBackupTaskNotFound or LogBackupErrorPaused) is the explanation users and TiDB
// Operator read. Only an entry that still claims the command runs while its Job has
// failed gets our condition, since nobody else will ever write one.
func keepEntry(b *BackupView, cmd, condReason string) bool {
	return condReason == ReasonCommitTsSet && !activePhase(b.Entries[cmd].Phase)
}

func closeMessage(b *BackupView, ep *Episode) string {
	recs := EpisodeRecords(b.Records)
	n := int64(0)
	if len(recs) > 0 {
		n = recs[len(recs)-1].RetryNum
	}
	if ep.GaveUp {
		return fmt.Sprintf("%s succeeded after the retries were spent (%d failures)", ep.Command, n)
	}
	return fmt.Sprintf("%s succeeded after %d retries", ep.Command, n)
}

func LastError(reason string) string {
	if reason == "" {
		return "unknown (no reason recorded)"
	}
	return reason
}

// matchesAny returns the first pattern found in s (case-insensitive), or "".
func matchesAny(s string, patterns []string) string {
	ls := strings.ToLower(s)
	for _, p := range patterns {
		if p != "" && strings.Contains(ls, strings.ToLower(p)) {
			return p
		}
	}
	return ""
}

// DefaultNonRetryable lists failures that a re-run cannot fix: BR's error codes for bad
// arguments and storage configuration, and a log backup task that already exists (a
// re-run of log-start collides with it) or does not exist (stop, pause and resume need
// it). Matched as case-insensitive substrings of the failure's reason and message.
var DefaultNonRetryable = append([]string{
	"ErrInvalidArgument",
	"ErrStorageInvalidConfig",
	"ErrStreamLogTaskExist",
	"ErrStreamLogTaskNotFound",
	"log backup task not found",
}, credentialErrors...)

// credentialErrors are the storage's refusals of the credentials a task runs with, in the
// words of S3 (and S3-compatible stores), GCS, Azure Blob and BR. A log backup task keeps
// the credentials it started with (tikv#17600; tikv#19064: a role token that expired after
// 6h), and BR retries "credential info not found" forever (tidb#65436), so neither a
// retry nor a resume helps: the credentials must be rotated and the task started again.
// They are part of DefaultNonRetryable, so --non-retryable-errors still decides: a list
// without them retries them as any failure.
var credentialErrors = []string{
	"ExpiredToken",                    // S3/STS: ExpiredToken, ExpiredTokenException
	"InvalidAccessKeyId",              // S3
	"SignatureDoesNotMatch",           // S3: a wrong secret key
	"AccessDenied",                    // S3: AccessDenied, STS AccessDeniedException
	"InvalidToken",                    // S3: a malformed session token
	"NoCredentialProviders",           // AWS SDK: no credentials found at all
	"credential info not found",       // BR (tidb#65436)
	"AuthenticationFailed",            // Azure Blob
	"AuthorizationPermissionMismatch", // Azure Blob
	"invalid_grant",                   // GCS: a revoked or expired service-account key
}

// credentialsMessage tells what a credential failure needs instead of a retry.
func credentialsMessage(cmd, pattern, lastErr string) string {
	return fmt.Sprintf("not retried: the backup storage refused the credentials (%q), and a log backup task keeps the "+
		"credentials it started with, so neither a retry of %s nor a resume helps. To recover: rotate the credentials "+
		"(the Secret the Backup names, or its service account's role), then restart the log backup: stop it "+
		"(spec.logSubcommand: log-stop) and create a new log Backup; take a full backup if the PITR window must not have "+
		"a gap; last error: %s", pattern, cmd, lastErr)
}

// Limit is the limit that ends a retry episode first should every further attempt fail.
type Limit struct {
	// Field is the policy field that trips: maxRetryTimes or retryTimeout.
	Field string
	// AfterRetry is the last retry that would run.
	AfterRetry int64
	// At is the earliest time the episode would give up: when that retry starts and fails.
	At time.Time
}

// ProjectLimit finds the limit that ends the open episode first should every further
// attempt fail the moment it starts, by asking decideFailure, the rule Decide applies,
// about each projected failure in turn. d is Decide's answer on in (a Wait or a
// RecordFailure of a command); nil when no limit can be projected.
func ProjectLimit(in Input, d Decision) *Limit {
	b := *in.Backup
	recs := append([]Record(nil), EpisodeRecords(b.Records)...)
	if d.Action == ActRecordFailure && d.Record != nil {
		recs = append(recs, *d.Record)
	}
	b.Episode = &Episode{Command: d.Command}
	for range 64 { // validation bounds maxRetryTimes far below this
		if len(recs) == 0 {
			return nil
		}
		last := &recs[len(recs)-1]
		if last.ExpectedRetryAt == nil {
			return nil
		}
		at := *last.ExpectedRetryAt
		last.RealRetryAt = &at
		b.Records = recs
		sim := in
		sim.Now, sim.Backup, sim.Job, sim.Kernel = at, &b, nil, nil
		next := decideFailure(sim, d.Command, &failure{what: "projected", reason: last.OriginalReason, at: at})
		switch next.Action {
		case ActRecordFailure:
			recs = append(recs, *next.Record)
		case ActGiveUp:
			limit := defaults.FieldMaxRetryTimes
			if next.ConditionReason == ReasonRetryTimeout {
				limit = defaults.FieldRetryTimeout
			}
			return &Limit{Field: limit, AfterRetry: last.RetryNum, At: at}
		default:
			return nil
		}
	}
	return nil
}
