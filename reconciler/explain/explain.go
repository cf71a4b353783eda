package explain

import (
	"context"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
)

// Explanation says why a Backup is, or is not, retrying, and what happens next. Every
// decision in it is Decide's, on the input Reconcile builds on its fresh path.
type Explanation struct {
	Backup string    `json:"backup"`
	At     time.Time `json:"at"`
	Mode   string    `json:"mode"`
	Phase  string    `json:"phase,omitempty"`
	// Command is the command TiDB Operator works on (nil: not a log backup, or unknown).
	Command *CommandState `json:"command,omitempty"`
	Policy  PolicyState   `json:"policy"`
	// Job is the current command's Job, if it exists.
	Job *JobState `json:"job,omitempty"`
	// Episode is the open retry episode, with its records as a timeline.
	Episode *EpisodeState `json:"episode,omitempty"`
	// Decision is what the reconciler decides now.
	Decision DecisionState `json:"decision"`
	// Next says what happens next and when, in a sentence.
	Next string `json:"next"`
	// Limit, when a retry is scheduled, is the limit that would end the episode first
	// should every further attempt fail.
	Limit *LimitState `json:"limit,omitempty"`
	// Kernel is what PD holds for the task (only with the kernel probe configured).
	Kernel *KernelState `json:"kernel,omitempty"`
}

// CommandState is the current command and how TiDB Operator derives it.
type CommandState struct {
	Name        string `json:"name"`
	Phase       string `json:"phase,omitempty"`
	DerivedFrom string `json:"derivedFrom"`
}

// PolicyState is the effective policy and where each value came from.
type PolicyState struct {
	Fields []PolicyField `json:"fields"`
	// Errors, if any, make the policy malformed: failures are not retried.
	Errors []string `json:"errors,omitempty"`
}

// PolicyField is one field of the effective policy.
type PolicyField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Source: spec, server default, namespace default, or the CRD's default.
	Source string `json:"source"`
}

// JobState is the current command's Job.
type JobState struct {
	Name  string `json:"name"`
	State string `json:"state"`
}

// EpisodeState is the open retry episode.
type EpisodeState struct {
	Command  string        `json:"command"`
	GaveUp   bool          `json:"gaveUp,omitempty"`
	Pause    bool          `json:"pause,omitempty"`
	Timeline []RecordState `json:"timeline"`
}

// RecordState is one record of status.backoffRetryStatus: detected, scheduled, started,
// and its result.
type RecordState struct {
	RetryNum  int64      `json:"retryNum"`
	Detected  time.Time  `json:"detected"`
	Scheduled *time.Time `json:"scheduled,omitempty"`
	Started   *time.Time `json:"started,omitempty"`
	Result    string     `json:"result"`
	Reason    string     `json:"reason"`
	Error     string     `json:"error,omitempty"`
}

// DecisionState is Decide's answer.
type DecisionState struct {
	Action   retry.Action `json:"action"`
	Reason   string       `json:"reason,omitempty"`
	Message  string       `json:"message,omitempty"`
	RetryNum int64        `json:"retryNum,omitempty"`
	// At is when a waiting decision is due.
	At *time.Time `json:"at,omitempty"`
}

// LimitState is the limit that ends the episode first if every further attempt fails.
type LimitState struct {
	// Limit is maxRetryTimes or retryTimeout.
	Limit string `json:"limit"`
	// AfterRetry is the last retry that would run.
	AfterRetry int64 `json:"afterRetry"`
	// At is the earliest time the episode would give up: when that retry starts and fails.
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

// KernelState is the probe's reading of the task in PD.
type KernelState struct {
	Endpoint   string `json:"endpoint,omitempty"`
	Summary    string `json:"summary,omitempty"`
	Error      string `json:"error,omitempty"`
	Checkpoint string `json:"checkpoint,omitempty"`
	GCSafe     string `json:"gcSafePoint,omitempty"`
}

// Describe decides on a Backup exactly as the reconciler does on its fresh path
// (reconciler.DecideNow: everything read through r.APIReader, the caller's credentials),
// and explains the decision. It writes nothing. probe, if set, stands in for the kernel
// probe and is asked when the reconciler would ask its probe.
func Describe(ctx context.Context, r *reconciler.Reconciler, key types.NamespacedName, probe reconciler.Probe) (*Explanation, error) {
	in, d, err := r.DecideNow(ctx, key, probe)
	if err != nil {
		return nil, err
	}
	x := &Explanation{Backup: key.String(), At: in.Now, Mode: in.Backup.Mode, Phase: in.Backup.Phase}
	overridden := in.Config.LogDefaults != r.Config.LogDefaults
	x.describe(in, d, overridden)
	return x, nil
}

// describe fills everything but the header from the input and the decision.
// overridden: a namespace override gives the defaults.
func (x *Explanation) describe(in retry.Input, d retry.Decision, overridden bool) {
	b := in.Backup
	if b.Mode == defaults.BackupModeLog {
		if cmd, why := retry.DeriveCommand(b); cmd != "" {
			x.Command = &CommandState{Name: cmd, Phase: b.Entries[cmd].Phase, DerivedFrom: why}
		} else {
			x.Command = &CommandState{DerivedFrom: why}
		}
	}
	x.Policy = describePolicy(in, overridden)
	if j := in.Job; j != nil {
		state := "exists"
		switch {
		case j.Deleting:
			state = "being deleted"
		case j.Failed != nil:
			state = "failed: " + retry.JoinReason(j.Failed.Reason, j.Failed.Message)
		}
		if !j.Owned {
			state += " (not controlled by this Backup)"
		}
		x.Job = &JobState{Name: j.Name, State: state}
	}
	if ep := b.Episode; ep != nil {
		x.Episode = &EpisodeState{Command: ep.Command, GaveUp: ep.GaveUp, Pause: ep.Pause}
		for _, rec := range retry.EpisodeRecords(b.Records) {
			x.Episode.Timeline = append(x.Episode.Timeline, describeRecord(rec))
		}
	}
	x.Decision = DecisionState{Action: d.Action, Reason: d.Reason, Message: d.Message, RetryNum: d.RetryNum}
	if d.RequeueAfter > 0 && (d.Action == retry.ActWait || d.Action == retry.ActRecordFailure) {
		at := in.Now.Add(d.RequeueAfter)
		x.Decision.At = &at
	}
	x.Next = next(in, d)
	if (d.Action == retry.ActWait || d.Action == retry.ActRecordFailure) && !d.Pause && (b.Episode == nil || !b.Episode.Pause) {
		if l := retry.ProjectLimit(in, d); l != nil {
			x.Limit = &LimitState{Limit: l.Field, AfterRetry: l.AfterRetry, At: l.At,
				Message: fmt.Sprintf("%s trips first: if every retry fails, the episode gives up when retry %d fails, at %s at the earliest",
					l.Field, l.AfterRetry, retry.RFC3339(l.At))}
		}
	}
	if k := in.Kernel; k != nil {
		x.Kernel = &KernelState{Endpoint: k.Endpoint}
		if k.Err != nil {
			x.Kernel.Error = k.Err.Error()
		}
		if t := k.Task; t != nil {
			x.Kernel.Summary = t.Summary()
			if msg := t.ErrorMessage(); msg != "" {
				x.Kernel.Summary += ": " + msg
			}
			if t.CheckpointTS > 0 {
				x.Kernel.Checkpoint = fmt.Sprintf("%d (%s)", t.CheckpointTS, retry.RFC3339(kernel.PhysicalTime(t.CheckpointTS)))
			}
			if t.GCSafePoint > 0 {
				x.Kernel.GCSafe = fmt.Sprintf("%d (%s)", t.GCSafePoint, retry.RFC3339(kernel.PhysicalTime(t.GCSafePoint)))
			}
		}
	}
}

// describePolicy names the source of each field of the policy the reconciler enforces,
// as defaults.FillLog (the webhook's defaulting) would fill it.
func describePolicy(in retry.Input, overridden bool) PolicyState {
	b := in.Backup
	var ps PolicyState
	filled := in.Config.FillLog(b.Policy, b.KeepSchemaDefaults, retry.PolicyPath)
	_, errs := in.Config.Effective(b.Policy, b.KeepSchemaDefaults, retry.PolicyPath)
	for _, e := range append(b.PolicyErrs, errs...) {
		ps.Errors = append(ps.Errors, e.Error())
	}
	serverSource := "server default"
	if overridden {
		serverSource = "namespace default"
	}
	for _, name := range defaults.PolicyFields {
		f := PolicyField{Name: name, Value: fmt.Sprint(filled.Result.Value(name)), Source: "spec"}
		switch {
		case slices.Contains(filled.Replaced, name):
			f.Source = fmt.Sprintf("%s (replaces the CRD's snapshot default %v)", serverSource, b.Policy.Value(name))
		case slices.Contains(filled.Set, name):
			f.Source = serverSource
		case b.Policy.Value(name) == defaults.SchemaDefaults.Value(name):
			f.Source = "spec (equal to the CRD's snapshot default, kept)"
		}
		if in.Backup.Mode != defaults.BackupModeLog {
			f.Value, f.Source = fmt.Sprint(b.Policy.Value(name)), "spec"
			if b.Policy.Value(name) == nil {
				f.Value, f.Source = "-", "unset"
			}
		}
		ps.Fields = append(ps.Fields, f)
	}
	return ps
}

func describeRecord(r retry.Record) RecordState {
	s := RecordState{RetryNum: r.RetryNum, Detected: r.DetectFailedAt, Scheduled: r.ExpectedRetryAt, Started: r.RealRetryAt,
		Reason: r.RetryReason, Error: r.OriginalReason}
	switch {
	case r.ExpectedRetryAt == nil:
		s.Result = "gave up here"
	case r.RealRetryAt == nil:
		s.Result = "retry pending"
	default:
		s.Result = "retried"
	}
	return s
}

// next says in a sentence what happens next, from the decision and, when it is to do
// nothing, from the facts Decide looked at.
func next(in retry.Input, d retry.Decision) string {
	b := in.Backup
	switch d.Action {
	case retry.ActWait:
		return fmt.Sprintf("retry %d of %s starts at %s (in %s)", d.RetryNum, d.Command,
			retry.RFC3339(in.Now.Add(d.RequeueAfter)), defaults.FormatDuration(d.RequeueAfter.Round(time.Second)))
	case retry.ActRecordFailure:
		return "the reconciler records the failure now and schedules " + d.Message
	case retry.ActDeleteJob:
		return fmt.Sprintf("retry %d is due: the reconciler deletes Job %s of the failed attempt, then hands %s back to TiDB Operator",
			d.RetryNum, retry.JobName(b.Name, d.Command), d.Command)
	case retry.ActAwaitCleanup:
		return fmt.Sprintf("retry %d is due, %s", d.RetryNum, d.Message)
	case retry.ActAwaitKernel:
		return fmt.Sprintf("retry %d is due: %s", d.RetryNum, d.Message)
	case retry.ActNone:
		return "nothing: " + d.Message
	}
	return fmt.Sprintf("the reconciler does %s now (%s): %s", d.Action, d.Reason, d.Message)
}
