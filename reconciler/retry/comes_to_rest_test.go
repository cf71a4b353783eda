package retry

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
)

// The come-to-rest property: a decision that has been carried out is never taken again.
// Apply the write a decision asks for to the object, decide again on the result with
// everything else unchanged, and the answer is None or a wait: nothing more to write.
// The inputs are generated from bytes (the fuzzer's, or a seeded PRNG's), so a new path
// through Decide is covered without anyone listing it.

// chooser turns bytes into choices; when the bytes run out every choice is the first.
type chooser struct{ data []byte }

func (c *chooser) pick(n int) int {
	if len(c.data) == 0 || n <= 1 {
		return 0
	}
	v := int(c.data[0]) % n
	c.data = c.data[1:]
	return v
}

func (c *chooser) flip() bool { return c.pick(2) == 1 }

func oneOf[T any](c *chooser, opts ...T) T { return opts[c.pick(len(opts))] }

var allCommands = []string{CmdStart, CmdStop, CmdPause, CmdResume, CmdTruncate}

// failedReasons are the Failed conditions others write (BR through the backup-manager,
// TiDB Operator's tracker) and the ones this reconciler writes.
var failedReasons = []string{"LogBackupStartFailed", "LogBackupTaskNotFound", "BRFailed", "",
	ReasonRetryLimitExceeded, ReasonRetryTimeout, ReasonNotRetryable, ReasonInvalidRetryPolicy, ReasonCommitTsSet,
	ReasonLogGapUnrecoverable, "LogBackupTaskNotFound", ReasonCredentialsRejected, operatorStateQueryFailed}

// generated is one input to Decide, with the raw object it was viewed from.
type generated struct {
	u  *unstructured.Unstructured
	in Input
}

func generate(data []byte) generated {
	c := &chooser{data: data}
	const sec = time.Second
	u := obj()
	set("spec.backupMode", oneOf(c, "log", "log", "log", "snapshot"))(u)
	if s := oneOf(c, "", "", CmdStart, CmdStop, CmdPause, "log-x"); s != "" {
		set("spec.logSubcommand", s)(u)
	}
	if c.pick(4) == 0 {
		set("spec.logStop", true)(u)
	}
	if c.pick(4) == 0 {
		set("spec.logTruncateUntil", "5")(u)
		if c.flip() {
			set("status.logSuccessTruncateUntil", "5")(u)
		}
	}
	set("status.phase", oneOf(c, PhaseRunning, PhaseScheduled, PhaseFailed, PhaseRetryFailed, PhasePaused, PhaseStopped, PhaseComplete, PhaseInvalid, ""))(u)
	if c.flip() {
		set("status.commitTs", "4523")(u)
	}
	if c.flip() {
		set("status.logCheckpointTs", strconv.FormatUint(kernel.TSO(t0.Add(time.Duration(c.pick(8))*20*time.Second)), 10))(u)
	}
	if c.flip() {
		set("status.conditions", []any{map[string]any{"type": PhaseRetryFailed, "status": "True", "reason": operatorErrorPaused,
			"lastTransitionTime": RFC3339(t0.Add(time.Duration(c.pick(8)) * 20 * time.Second))}})(u)
	}
	switch c.pick(6) {
	case 1:
		set("spec.backoffRetryPolicy", map[string]any{"minRetryDuration": "1s", "maxRetryTimes": int64(2), "retryTimeout": "1m"})(u)
	case 2:
		set("spec.backoffRetryPolicy", map[string]any{"minRetryDuration": "300s", "maxRetryTimes": int64(2), "retryTimeout": "30m"})(u)
	case 3:
		set("spec.backoffRetryPolicy", map[string]any{"minRetryDuration": "30"})(u)
	case 4:
		set("spec.backoffRetryPolicy", map[string]any{"maxRetryTimes": int64(0)})(u)
	case 5:
		set("spec.backoffRetryPolicy", map[string]any{"minRetryDuration": "20s", "retryTimeout": "30s"})(u)
	}
	for _, cmd := range allCommands {
		if c.pick(3) == 0 {
			continue
		}
		e := map[string]any{"command": cmd, "phase": oneOf(c, PhaseFailed, PhaseFailed, PhaseComplete, PhaseScheduled, PhaseRunning, PhaseRetryFailed, PhasePrepare)}
		if c.pick(3) != 0 {
			reason := oneOf(c, failedReasons...)
			msg := oneOf(c, "rpc error: store 1 unavailable", "[BR:Common:ErrInvalidArgument] bad flag", "log backup task not found", "",
				"ExpiredToken: The provided token has expired")
			if reason == ReasonCommitTsSet || strings.HasPrefix(reason, "Retry") {
				msg = "not retried: ...; last error: BRFailed: boom"
			}
			e["conditions"] = []any{map[string]any{"type": "Failed", "status": oneOf(c, "True", "True", "False"), "reason": reason,
				"message": msg, "lastTransitionTime": RFC3339(t0.Add(time.Duration(c.pick(4)) * 20 * time.Minute))}}
		}
		// TiDB Operator's record of an error pause, and a completed run (a resume).
		switch c.pick(4) {
		case 1:
			e["phase"] = PhaseRetryFailed
			e["conditions"] = append(slice(e["conditions"]), map[string]any{"type": PhaseRetryFailed, "status": "True",
				"reason": operatorErrorPaused, "message": "Log backup paused due to error: error",
				"lastTransitionTime": RFC3339(t0.Add(time.Duration(c.pick(8)) * 20 * time.Second))})
		case 2:
			e["phase"] = PhaseComplete
			e["conditions"] = append(slice(e["conditions"]), map[string]any{"type": PhaseComplete, "status": "True",
				"reason": oneOf(c, "", ReasonRecoveredFromKernel), "lastTransitionTime": RFC3339(t0.Add(time.Duration(c.pick(8)) * 20 * time.Second))})
		}
		set("status.logSubCommandStatuses."+cmd, e)(u)
	}
	var recs []Record
	for i, n := 0, c.pick(4); i < n; i++ {
		num := int64(c.pick(4))
		if i == 0 || c.flip() {
			num = int64(len(recs) + 1)
		}
		detect := time.Duration(c.pick(8)) * 10 * sec
		r := Record{RetryNum: num, DetectFailedAt: t0.Add(detect), OriginalReason: oneOf(c, "BRFailed: boom", "", "LogBackupTaskNotFound: gone")}
		if c.pick(4) != 0 {
			r.ExpectedRetryAt = at(detect + time.Duration(1+c.pick(6))*10*sec)
			if c.flip() {
				r.RealRetryAt = r.ExpectedRetryAt
			}
		}
		recs = append(recs, r)
	}
	if len(recs) > 0 {
		records(recs...)(u)
	}
	if c.pick(3) != 0 {
		// Mostly the current command's episode, where retries happen; else a pause episode.
		cur := CurrentCommand(ViewBackup(u))
		if c.pick(3) == 0 {
			u.SetAnnotations(map[string]string{EpisodeAnnotation: Episode{Command: CmdResume, Pause: true, GaveUp: c.pick(4) == 0, HandOffs: c.pick(4)}.String()})
		} else {
			episode(oneOf(c, cur, cur, cur, oneOf(c, allCommands...)), c.pick(3) == 0)(u)
		}
	}
	if c.pick(6) == 0 {
		set("metadata.deletionTimestamp", RFC3339(t0))(u)
	}

	in := Input{Now: t0.Add(time.Duration(c.pick(12)) * oneOf(c, 5*sec, time.Minute, 10*time.Minute)),
		Config: defaults.DefaultConfig(), NonRetryable: DefaultNonRetryable}
	if c.pick(3) == 0 {
		in.Config = defaults.Config{LogDefaults: defaults.Policy{MinRetryDuration: sec, MaxRetryTimes: 2, RetryTimeout: time.Minute}}
	}
	if c.flip() {
		j := &JobView{Name: JobName("pitr", CurrentCommand(ViewBackup(u))), UID: "job-uid", Owned: c.pick(4) != 0, Deleting: c.pick(4) == 0}
		if c.flip() {
			j.Failed = &Condition{Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", Time: t0.Add(time.Duration(c.pick(3)) * 20 * time.Minute)}
		}
		in.Job = j
	}
	if c.pick(4) == 0 {
		in.LivePods = []string{"backup-pitr-log-start-x7k2p"}
	}
	cp := kernel.TSO(t0.Add(time.Duration(c.pick(8)) * 20 * time.Second))
	switch c.pick(9) {
	case 6:
		in.Kernel = &kernel.Result{Task: &kernel.Task{Name: "pitr", Exists: true, Paused: true, PausedByError: true,
			PauseMessage: oneOf(c, "store 4: disk full", "store 4: disk full", "the checkpoint lag is too huge", "AccessDenied: Access Denied"),
			CheckpointTS: cp, GCSafePoint: oneOf(c, cp-1, cp, cp+1)}, At: in.Now}
	case 7:
		in.Kernel = &kernel.Result{Task: &kernel.Task{Name: "pitr", Exists: true, CheckpointTS: cp}, At: in.Now}
	case 8:
		in.Kernel = &kernel.Result{Task: &kernel.Task{Name: "pitr", Exists: true, Paused: true, PauseMessage: "maintenance", CheckpointTS: cp}, At: in.Now}
	case 1:
		in.Kernel = &kernel.Result{Err: errors.New("connection refused")}
	case 2:
		in.Kernel = &kernel.Result{Task: &kernel.Task{Name: "pitr"}}
	case 3:
		in.Kernel = &kernel.Result{Task: &kernel.Task{Name: "pitr", Exists: true, StartTS: 449532234876551170}}
	case 4:
		in.Kernel = &kernel.Result{Task: &kernel.Task{Name: "pitr", Exists: true, StartTS: 9, Paused: true, PausedByError: true, PauseMessage: "store 4: disk full"}}
	case 5:
		in.Kernel = &kernel.Result{Task: &kernel.Task{Name: "pitr", Exists: true}}
	}
	in.NoHandOff = c.pick(6) == 0
	if c.pick(8) == 0 {
		// A coherent story after a resume: the pause episode's last resume started at
		// t0+50s and completed at t0+60s, and TiDB Operator may have marked the task
		// paused again, from a stale reading or a fresh one.
		set("status.commitTs", "4523")(u)
		u.SetAnnotations(map[string]string{EpisodeAnnotation: Episode{Command: CmdResume, Pause: true}.String()})
		records(Record{RetryNum: 1, DetectFailedAt: t0.Add(48 * sec), ExpectedRetryAt: at(50 * sec), RealRetryAt: at(50 * sec),
			OriginalReason: "LogBackupErrorPaused: Log backup paused due to error: error"})(u)
		set("status.logSubCommandStatuses.log-resume", map[string]any{"command": CmdResume, "phase": PhaseComplete,
			"conditions": []any{map[string]any{"type": PhaseComplete, "status": "True", "lastTransitionTime": RFC3339(t0.Add(60 * sec))}}})(u)
		if c.flip() {
			marked := RFC3339(t0.Add(time.Duration(c.pick(4)) * 40 * sec))
			set("status.phase", PhaseRetryFailed)(u)
			set("status.conditions", []any{map[string]any{"type": PhaseRetryFailed, "status": "True", "reason": operatorErrorPaused, "lastTransitionTime": marked}})(u)
			set("status.logSubCommandStatuses.log-start", map[string]any{"command": CmdStart, "phase": PhaseRetryFailed,
				"conditions": []any{map[string]any{"type": PhaseRetryFailed, "status": "True", "reason": operatorErrorPaused, "lastTransitionTime": marked}}})(u)
		} else {
			set("status.phase", PhaseRunning)(u)
			set("status.logSubCommandStatuses.log-start", map[string]any{"command": CmdStart, "phase": PhaseComplete})(u)
		}
		in.Now = t0.Add(60*sec + time.Duration(c.pick(8))*30*sec)
		if c.flip() {
			in.Kernel = nil
		}
	}
	in.Backup = ViewBackup(u)
	return generated{u: u, in: in}
}

// ownMessages are phrases only this reconciler writes; a record's originalReason (the
// "last error") must never carry one.
var ownMessages = []string{"not retried:", "gave up after", "retry budget", "succeeded after"}

// checkComesToRest decides, carries the decision out on the object, and decides again.
// It returns the first decision, or an error describing how the property failed.
func checkComesToRest(g generated) (Decision, error) {
	d := Decide(g.in)
	if d.Record != nil {
		for _, m := range ownMessages {
			if strings.Contains(d.Record.OriginalReason, m) {
				return d, fmt.Errorf("%s records our own message as the failure: %q", d.Action, d.Record.OriginalReason)
			}
		}
	}
	if d.Action == ActNone && d.Message == "" {
		return d, errors.New("a decision to do nothing does not say why")
	}
	again := g.in
	switch {
	case d.Action == ActDeleteJob:
		j := *g.in.Job
		j.Deleting = true
		again.Job = &j
	case d.Action.Writes():
		u := g.u.DeepCopy()
		if err := Apply(u, d, g.in.Now); err != nil {
			return d, fmt.Errorf("apply %s: %w", d.Action, err)
		}
		again.Backup = ViewBackup(u)
	default:
		return d, nil
	}
	if d2 := Decide(again); d2.Action.Acts() {
		return d, fmt.Errorf("after %s (%s/%s) the next decision is %s (%s/%s): %s", d.Action, d.Reason, d.ConditionReason,
			d2.Action, d2.Reason, d2.ConditionReason, d2.Message)
	}
	return d, nil
}

// TestDecideComesToRest runs the property over generated Backups and checks that the
// generator reaches every action and reason, so the property covers them all.
func TestDecideComesToRest(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 14))
	seen := map[string]int{}
	buf := make([]byte, 128)
	for i := 0; i < 40_000; i++ {
		for k := range buf {
			buf[k] = byte(rng.Uint32())
		}
		g := generate(buf)
		d, err := checkComesToRest(g)
		if err != nil {
			require.NoError(t, err, "input %x\nstatus: %v\nannotations: %v\njob: %+v kernel: %+v", buf, g.u.Object["status"], g.u.GetAnnotations(), g.in.Job, g.in.Kernel)
		}
		seen[string(d.Action)]++
		seen[d.Reason]++
		seen[d.ConditionReason]++
		if d.Pause {
			seen["Pause"+string(d.Action)]++
		}
	}
	t.Logf("reached: %v", seen)
	for _, want := range []string{
		string(ActRecordFailure), string(ActGiveUp), string(ActStartRetry), string(ActCloseEpisode), string(ActRecover), string(ActHandOff), string(ActPutBack),
		string(ActDeleteJob), string(ActWait), string(ActAwaitCleanup),
		ReasonCommitTsSet, ReasonNotRetryable, ReasonInvalidRetryPolicy, ReasonRetryLimitExceeded, ReasonRetryTimeout,
		ReasonRetrySucceeded, ReasonEpisodeReset, ReasonRecoveredFromKernel, ReasonRetryScheduled, ReasonRetryStarted,
		ReasonLogGapUnrecoverable, ReasonPauseRecordOutdated, ReasonCredentialsRejected,
		"HandOff", "PutBack", "PauseRecordFailure", "PauseGiveUp", "PauseStartRetry", "PauseCloseEpisode",
	} {
		assert.Positive(t, seen[want], "the generator never reached %s", want)
	}
}

// FuzzDecideComesToRest is the same property driven by the fuzzer (make fuzz).
func FuzzDecideComesToRest(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x01\x01\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g := generate(data)
		if _, err := checkComesToRest(g); err != nil {
			t.Fatalf("%v\nstatus: %v\nannotations: %v\njob: %+v", err, g.u.Object["status"], g.u.GetAnnotations(), g.in.Job)
		}
	})
}

// A write loop seen once, step by step: a failed log-start with status.commitTs set was
// given up on, then "closed" as a success because commitTs was set, then detected again
// from the Failed condition we had written ourselves, with our message as its error.
func TestCommitTsSetIsDecidedOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		u    *unstructured.Unstructured
		job  *JobView
		// keeps: the entry's Failed condition is someone else's and stays
		keeps bool
	}{
		{name: "TiDB Operator marked the running backup Failed", keeps: true, u: obj(entry(CmdStart, PhaseFailed), set("status.commitTs", "4523"),
			set("status.logSubCommandStatuses.log-start.conditions", []any{map[string]any{"type": "Failed", "status": "True",
				"reason": "LogBackupTaskNotFound", "message": "log backup task not found", "lastTransitionTime": RFC3339(t0)}}))},
		{name: "BR reported an error after commitTs was set", keeps: true, u: obj(entry(CmdStart, PhaseFailed), set("status.commitTs", "4523"))},
		{name: "the pod died while the entry said Running", u: obj(entry(CmdStart, PhaseRunning), set("status.commitTs", "4523")), job: failedJob(true)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.u
			before, _, _ := unstructured.NestedSlice(u.Object, "status", "logSubCommandStatuses", CmdStart, "conditions")
			in := Input{Now: t0.Add(time.Second), Config: defaults.DefaultConfig(), NonRetryable: DefaultNonRetryable, Job: tc.job}
			in.Backup = ViewBackup(u)
			d := Decide(in)
			require.Equal(t, ActGiveUp, d.Action)
			assert.Equal(t, ReasonCommitTsSet, d.ConditionReason)
			require.NotNil(t, d.Record, "the failure is recorded once")
			require.NoError(t, Apply(u, d, in.Now))
			for i := 0; i < 3; i++ {
				in.Now = in.Now.Add(time.Hour)
				in.Backup = ViewBackup(u)
				assert.Equal(t, ActNone, Decide(in).Action, "decided again after %d hours", i+1)
			}
			b := ViewBackup(u)
			require.Len(t, b.Records, 1)
			assert.NotContains(t, b.Records[0].OriginalReason, "not retried")
			after, _, _ := unstructured.NestedSlice(u.Object, "status", "logSubCommandStatuses", CmdStart, "conditions")
			if tc.keeps {
				assert.Equal(t, before, after, "someone else's Failed condition stays as written")
			} else {
				assert.Equal(t, ReasonCommitTsSet, b.Entries[CmdStart].Failed.Reason)
				assert.Contains(t, b.Entries[CmdStart].Failed.Message, "BackoffLimitExceeded", "one explanation that keeps the original reason")
			}
		})
	}
}

func slice(v any) []any {
	l, _ := v.([]any)
	return l
}
