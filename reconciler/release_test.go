package reconciler

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry/retrytest"
)

// releasingProbe records what was released.
type releasingProbe struct{ released []types.NamespacedName }

func (p *releasingProbe) Lookup(kernel.Target) (kernel.Result, bool) { return kernel.Result{}, false }
func (p *releasingProbe) Release(b types.NamespacedName)             { p.released = append(p.released, b) }
func (p *releasingProbe) Timeout() time.Duration                     { return time.Second }

// A Backup that is gone, or going, lets go of the kernel probe's clients (the README's
// "closed when the last Backup using them is deleted" rests on this call).
func TestKernelClientsAreReleasedWithTheBackup(t *testing.T) {
	deleting := retrytest.Obj(retrytest.Set("metadata.deletionTimestamp", retry.RFC3339(retrytest.T0)), retrytest.Set("metadata.finalizers", []any{"keep"}))
	c := fake.NewClientBuilder().WithObjects(deleting).Build()
	probe := &releasingProbe{}
	r := &Reconciler{Client: c, APIReader: c, Clock: clocktesting.NewFakePassiveClock(retrytest.T0), Kernel: probe}

	gone := types.NamespacedName{Namespace: "ns", Name: "gone"}
	_, err := r.Reconcile(t.Context(), reconcile.Request{NamespacedName: gone})
	require.NoError(t, err)
	going := types.NamespacedName{Namespace: "ns", Name: "pitr"}
	_, err = r.Reconcile(t.Context(), reconcile.Request{NamespacedName: going})
	require.NoError(t, err)
	assert.Equal(t, []types.NamespacedName{gone, going}, probe.released)
}

func TestKernelMetrics(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	for _, r := range []kernel.Result{
		{Task: &kernel.Task{Exists: true}},
		{Task: &kernel.Task{Exists: true, Paused: true}},
		{Task: &kernel.Task{Exists: true, Paused: true, PausedByError: true}},
		{Task: &kernel.Task{}},
		{Err: assert.AnError},
		{Err: assert.AnError},
	} {
		m.ObserveProbe(r)
	}
	for result, want := range map[string]float64{"running": 1, "paused": 1, "paused_by_error": 1, "absent": 1, "error": 2} {
		assert.Equal(t, want, testutil.ToFloat64(m.probes.WithLabelValues(result)), result)
	}

}

// What each writing decision counts. A put-back made without the kernel's word (TiDB
// Operator's stale record of a pause set back) is no recovery from the kernel; it counts
// as a recovery only when its write ends the episode.
func TestWrittenCounts(t *testing.T) {
	type counts struct{ failures, started, recovered, fromKernel, exhausted, skipped, gaps float64 }
	for _, tc := range []struct {
		name string
		d    retry.Decision
		want counts
	}{
		{"record", retry.Decision{Action: retry.ActRecordFailure}, counts{failures: 1}},
		{"give up with a record", retry.Decision{Action: retry.ActGiveUp, Record: &retry.Record{}, Reason: retry.ReasonRetryExhausted}, counts{failures: 1, exhausted: 1}},
		{"skip a gap", retry.Decision{Action: retry.ActGiveUp, Reason: retry.ReasonRetrySkipped, ConditionReason: retry.ReasonLogGapUnrecoverable}, counts{skipped: 1, gaps: 1}},
		{"retry", retry.Decision{Action: retry.ActStartRetry}, counts{started: 1}},
		{"hand-off", retry.Decision{Action: retry.ActHandOff, Pause: true}, counts{started: 1}},
		{"recover", retry.Decision{Action: retry.ActRecover, Reason: retry.ReasonRecoveredFromKernel}, counts{recovered: 1, fromKernel: 1}},
		{"put back on the kernel's word", retry.Decision{Action: retry.ActPutBack, Reason: retry.ReasonRecoveredFromKernel}, counts{recovered: 1, fromKernel: 1}},
		{"stale record set back, episode open", retry.Decision{Action: retry.ActPutBack, Reason: retry.ReasonPauseRecordOutdated, Pause: true}, counts{}},
		{"stale record set back, episode ends", retry.Decision{Action: retry.ActPutBack, Reason: retry.ReasonPauseRecordOutdated}, counts{recovered: 1}},
		{"close", retry.Decision{Action: retry.ActCloseEpisode, Reason: retry.ReasonRetrySucceeded}, counts{recovered: 1}},
		{"reset", retry.Decision{Action: retry.ActCloseEpisode, Reason: retry.ReasonEpisodeReset}, counts{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMetrics(prometheus.NewRegistry())
			tc.d.Command = retry.CmdStart
			m.written("ns", tc.d)
			v := func(c *prometheus.CounterVec) float64 {
				return testutil.ToFloat64(c.WithLabelValues("ns", retry.CmdStart))
			}
			assert.Equal(t, tc.want, counts{v(m.failures), v(m.started), v(m.recovered), v(m.fromKernel), v(m.exhausted), v(m.skipped), v(m.gaps)})
		})
	}
}
