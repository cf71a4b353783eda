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
)

// releasingProbe records what was released.
type releasingProbe struct{ released []types.NamespacedName }

func (p *releasingProbe) Lookup(kernel.Target) (kernel.Result, bool) { return kernel.Result{}, false }
func (p *releasingProbe) Release(b types.NamespacedName)             { p.released = append(p.released, b) }
func (p *releasingProbe) Timeout() time.Duration                     { return time.Second }

// A Backup that is gone, or going, lets go of the kernel probe's clients (the README's
// "closed when the last Backup using them is deleted" rests on this call).
func TestKernelClientsAreReleasedWithTheBackup(t *testing.T) {
	deleting := obj(set("metadata.deletionTimestamp", rfc3339(t0)), set("metadata.finalizers", []any{"keep"}))
	c := fake.NewClientBuilder().WithObjects(deleting).Build()
	probe := &releasingProbe{}
	r := &Reconciler{Client: c, APIReader: c, Clock: clocktesting.NewFakePassiveClock(t0), Kernel: probe}

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

	// A recovery counts as recovered from the kernel, and as an episode that ended well.
	m.written("ns", Decision{Action: ActRecover, Command: CmdStart})
	assert.Equal(t, 1.0, testutil.ToFloat64(m.fromKernel.WithLabelValues("ns", CmdStart)))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.recovered.WithLabelValues("ns", CmdStart)))
}
