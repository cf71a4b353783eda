package kernel

import (
	"testing"
	"time"

	"github.com/pingcap/tidb-operator/pkg/apis/util/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tidb-backup-guard/tidb-backup-guard/test/etcdtest"
)

// The TSO conversion agrees with TiDB's own (as TiDB Operator ports it: TSToGoTime and
// GoTimeToTS in pkg/apis/util/config, "port from tidb").
func TestPhysicalTimeAgreesWithTiDB(t *testing.T) {
	for _, ts := range []uint64{0, 1, 1 << 18, 443017185945960449, 449532234876551170, 1<<63 - 1} {
		assert.True(t, config.TSToGoTime(ts).Equal(PhysicalTime(ts)), "ts %d", ts)
	}
	now := time.Date(2026, 11, 29, 17, 4, 5, 678_000_000, time.UTC)
	assert.Equal(t, config.GoTimeToTS(now), TSO(now))
	assert.True(t, PhysicalTime(TSO(now)).Equal(now))
}

// The checkpoint a resume is judged by, computed as BR computes it, and PD's GC safe point.
func TestProbeReadsCheckpointAndGCSafePoint(t *testing.T) {
	e, cli := etcdtest.StartT(t, etcdtest.Options{})
	ctx := t.Context()
	const start = 1000
	for _, task := range []string{"global", "stores", "stored", "fresh", "gone"} {
		require.NoError(t, etcdtest.PutTask(ctx, cli, task, start))
	}
	// The advancer's global checkpoint wins over store checkpoints.
	require.NoError(t, etcdtest.PutStoreCheckpoint(ctx, cli, "global", 1, 1500))
	require.NoError(t, etcdtest.PutGlobalCheckpoint(ctx, cli, "global", 1400))
	// Without it: the least store checkpoint.
	require.NoError(t, etcdtest.PutStoreCheckpoint(ctx, cli, "stores", 1, 1700))
	require.NoError(t, etcdtest.PutStoreCheckpoint(ctx, cli, "stores", 2, 1600))
	// ... raised to what the stores flushed to storage.
	require.NoError(t, etcdtest.PutStoreCheckpoint(ctx, cli, "stored", 1, 1100))
	require.NoError(t, etcdtest.PutStorageCheckpoint(ctx, cli, "stored", 1, 1300))
	require.NoError(t, etcdtest.PutStorageCheckpoint(ctx, cli, "stored", 2, 1200))
	// A task whose name extends another's does not lend it checkpoints.
	require.NoError(t, etcdtest.PutGlobalCheckpoint(ctx, cli, "global2", 9999))
	require.NoError(t, etcdtest.DeleteTask(ctx, cli, "gone"))

	p := newProber(t, Config{EndpointTemplate: e.Endpoint})
	probe := func(task string) *Task {
		r := p.Probe(ctx, target(task))
		require.NoError(t, r.Err)
		return r.Task
	}
	tests := []struct {
		task       string
		checkpoint uint64
	}{{"global", 1400}, {"stores", 1600}, {"stored", 1300}, {"fresh", start}, {"gone", 0}}
	for _, tt := range tests {
		assert.Equal(t, tt.checkpoint, probe(tt.task).CheckpointTS, tt.task)
	}
	assert.Zero(t, probe("global").GCSafePoint, "PD has no safe point yet")
	assert.False(t, probe("global").GCPassedCheckpoint())

	require.NoError(t, etcdtest.SetGCSafePoint(ctx, cli, 1399))
	assert.Equal(t, uint64(1399), probe("global").GCSafePoint)
	assert.False(t, probe("global").GCPassedCheckpoint(), "the checkpoint is still above the safe point")
	require.NoError(t, etcdtest.SetGCSafePoint(ctx, cli, 1400))
	assert.True(t, probe("global").GCPassedCheckpoint(), "BR refuses ts <= safe point")
	assert.False(t, probe("gone").GCPassedCheckpoint(), "no task, nothing to resume")
}
