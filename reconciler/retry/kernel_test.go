package retry

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry/retrytest"
)

// A retry is due: the kernel's answer decides between re-running, recovering and noting.
func TestDecideWithKernelState(t *testing.T) {
	const sec = time.Second
	due := func(cmd string, edits ...edit) *unstructured.Unstructured {
		return obj(append([]edit{entry(cmd, PhaseFailed), episode(cmd, false), records(rec(1, 0, 30*sec, false))}, edits...)...)
	}
	found := func(task kernel.Task) *kernel.Result {
		task.Name = "pitr"
		return &kernel.Result{Task: &task, Endpoint: "http://basic-pd.ns:2379"}
	}
	running := kernel.Task{Exists: true, StartTS: 449532234876551170}
	pausedByError := kernel.Task{Exists: true, StartTS: 9, Paused: true, PausedByError: true,
		PauseMessage: "store 4: KV:LogBackup:Io: disk full", LastErrors: []kernel.StoreError{{StoreID: 4, Code: "KV:LogBackup:Io", Message: "disk full"}}}
	tests := []struct {
		name   string
		backup *unstructured.Unstructured
		kernel *kernel.Result
		want   Decision // compared on Action, Reason, CommitTs, KernelReason, RecordNote
	}{
		{"probe off: the retry starts as before", due(CmdStart), nil,
			Decision{Action: ActStartRetry, Reason: ReasonRetryStarted}},
		{"log-start whose task is registered and runs: recovered, not re-run", due(CmdStart), found(running),
			Decision{Action: ActRecover, Reason: ReasonRecoveredFromKernel, CommitTs: "449532234876551170",
				RecordNote: "recovered from the kernel state: task pitr (start ts 449532234876551170) exists and runs, so log-start was not re-run"}},
		{"log-start whose task an operator paused: recovered too", due(CmdStart), found(kernel.Task{Exists: true, StartTS: 5, Paused: true}),
			Decision{Action: ActRecover, Reason: ReasonRecoveredFromKernel, CommitTs: "5",
				RecordNote: "recovered from the kernel state: task pitr (start ts 5) exists, paused by an operator, so log-start was not re-run"}},
		{"task paused by an error: its message becomes the reason and the retry goes ahead", due(CmdStart), found(pausedByError),
			Decision{Action: ActStartRetry, Reason: ReasonRetryStarted,
				KernelReason: "kernel: store 4: KV:LogBackup:Io: disk full",
				RecordNote:   "kernel: task pitr (start ts 9) is paused by an error"}},
		{"task absent: the retry goes ahead", due(CmdStart), found(kernel.Task{}),
			Decision{Action: ActStartRetry, Reason: ReasonRetryStarted, RecordNote: "kernel: task pitr does not exist"}},
		{"PD unreachable: the retry goes ahead, and the record says so", due(CmdStart),
			&kernel.Result{Err: errors.New("context deadline exceeded"), Endpoint: "http://basic-pd.ns:2379"},
			Decision{Action: ActStartRetry, Reason: ReasonRetryStarted,
				RecordNote: "the kernel state could not be read (context deadline exceeded), so the retry went ahead without it"}},
		{"a task without a start ts cannot give a commitTs", due(CmdStart), found(kernel.Task{Exists: true}),
			Decision{Action: ActStartRetry, Reason: ReasonRetryStarted,
				RecordNote: "kernel: task pitr (start ts 0) exists and runs, but without a start ts to report as commitTs, so the retry went ahead"}},
		{"other commands are never recovered: the task existing is what log-pause expects", due(CmdPause, set("spec.logSubcommand", CmdPause)), found(running),
			Decision{Action: ActStartRetry, Reason: ReasonRetryStarted, RecordNote: "kernel: task pitr (start ts 449532234876551170) exists and runs"}},
		{"other commands get the kernel's error too", due(CmdPause, set("spec.logSubcommand", CmdPause)), found(pausedByError),
			Decision{Action: ActStartRetry, Reason: ReasonRetryStarted,
				KernelReason: "kernel: store 4: KV:LogBackup:Io: disk full",
				RecordNote:   "kernel: task pitr (start ts 9) is paused by an error"}},
		{"the kernel is only consulted for a due retry", obj(entry(CmdStart, PhaseFailed), episode(CmdStart, false), records(rec(1, 0, time.Hour, false))),
			found(running), Decision{Action: ActWait}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(Input{Now: t0.Add(40 * sec), Backup: ViewBackup(tt.backup), Config: defaults.DefaultConfig(),
				NonRetryable: DefaultNonRetryable, Kernel: tt.kernel})
			assert.Equal(t, tt.want.Action, got.Action)
			assert.Equal(t, tt.want.Reason, got.Reason)
			assert.Equal(t, tt.want.CommitTs, got.CommitTs)
			assert.Equal(t, tt.want.KernelReason, got.KernelReason)
			assert.Equal(t, tt.want.RecordNote, got.RecordNote)
		})
	}
}

func TestApplyRecover(t *testing.T) {
	now := t0.Add(time.Minute)
	d := Decision{Action: ActRecover, Command: CmdStart, Reason: ReasonRecoveredFromKernel, CommitTs: "449532234876551170",
		RecordNote: "recovered from the kernel state", Message: "log-start failed but its task is registered"}

	// BR reported the failure: status.phase says Failed and goes back to Running.
	u := retrytest.Rich()
	episode(CmdStart, false)(u)
	records(rec(1, 0, 30*time.Second, false))(u)
	set("status.phase", PhaseFailed)(u)
	before := unowned(u)
	require.NoError(t, Apply(u, d, now))
	after := unowned(u)
	unstructured.RemoveNestedField(after, "status", "commitTs")
	assert.Equal(t, before, after, "only owned fields change")

	b := ViewBackup(u)
	assert.Equal(t, "449532234876551170", b.CommitTs)
	assert.Equal(t, PhaseComplete, b.Entries[CmdStart].Phase)
	assert.Equal(t, PhaseRunning, b.Phase)
	assert.Nil(t, b.Episode, "the episode ends with the recovery")
	require.Len(t, b.Records, 1)
	assert.Equal(t, &now, b.Records[0].RealRetryAt)
	assert.Equal(t, "recovered from the kernel state", b.Records[0].RetryReason, "the note joins the (empty) retry reason")
	assert.Equal(t, "BRFailed: boom", b.Records[0].OriginalReason, "the Job's reason stays")
	assert.True(t, commandSucceeded(b, CmdStart, nil))
	assert.Equal(t, ActNone, Decide(Input{Now: now, Backup: b, Config: defaults.DefaultConfig()}).Action, "nothing left to do")
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	assert.Len(t, conds, 2, "Scheduled kept, Running added")

	// The pod died: status.phase says Running and stays.
	u = obj(entry(CmdStart, PhaseRunning), episode(CmdStart, false), records(rec(1, 0, 30*time.Second, false)))
	require.NoError(t, Apply(u, d, now))
	_, found, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	assert.False(t, found, "no Backup condition is written when the phase was not Failed")
	assert.Equal(t, PhaseRunning, ViewBackup(u).Phase)
}

func TestApplyStartRetryWithKernelReason(t *testing.T) {
	u := obj(entry(CmdStart, PhaseFailed), records(Record{RetryNum: 1, DetectFailedAt: t0, ExpectedRetryAt: at(time.Second),
		RetryReason: "log-start failed: Job backup-pitr-log-start failed while the command was Running", OriginalReason: "BackoffLimitExceeded"}))
	now := t0.Add(time.Minute)
	require.NoError(t, Apply(u, Decision{Action: ActStartRetry, Command: CmdStart, Message: "retry 1 started",
		KernelReason: "kernel: store 4: disk full", RecordNote: "kernel: task pitr (start ts 9) is paused by an error"}, now))
	r := ViewBackup(u).Records[0]
	assert.Equal(t, "kernel: store 4: disk full", r.OriginalReason)
	assert.Equal(t, "log-start failed: Job backup-pitr-log-start failed while the command was Running; kernel: task pitr (start ts 9) is paused by an error", r.RetryReason)
	assert.Equal(t, &now, r.RealRetryAt)
}

func TestViewReadsTheCluster(t *testing.T) {
	b := ViewBackup(obj())
	assert.Equal(t, "basic", b.Cluster)
	assert.Equal(t, "ns", b.ClusterNamespace, "defaults to the Backup's namespace")
	b = ViewBackup(obj(set("spec.br.clusterNamespace", "tidb")))
	assert.Equal(t, "tidb", b.ClusterNamespace)
}
