package integration

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/cmd/tidb-backup-guard/app"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// startReplicas runs n reconcilers side by side.
func startReplicas(t *testing.T, n int, edit func(*app.Options)) {
	t.Helper()
	for range n {
		s, err := env.StartReconciler(t.Context(), testLog(t), scoped(t, edit))
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, s.Stop()) })
	}
}

func assertRecoveredOnce(t *testing.T, op *testenv.Cluster) {
	t.Helper()
	b := eventually(t, op.Namespace, "pitr", 30*time.Second, "recovers",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
	recs := recordsOf(t, b)
	require.Len(t, recs, 2, "one record per failure, whoever wrote it")
	assert.Equal(t, int64(1), recs[0].RetryNum)
	assert.Equal(t, int64(2), recs[1].RetryNum)
	assert.Equal(t, 3, op.Runs("pitr"), "one re-run per failure")
	require.Eventually(t, func() bool { return eventReasons(t, op.Namespace, "pitr")["RetrySucceeded"] >= 1 }, 10*time.Second, 50*time.Millisecond)
	settled(t, op, map[string]int{"pitr": 2})
	assert.Equal(t, 1, eventReasons(t, op.Namespace, "pitr")["RetrySucceeded"], "the episode closed once")
}

// With leader election, two replicas share one Lease and one of them reconciles.
func TestLeaderElection(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	const lease = "tidb-backup-guard-e2e"
	ns, _ := storyOf(t) // the Lease too is the story's own
	startReplicas(t, 2, func(o *app.Options) {
		o.LeaderElect, o.LeaderElectionNamespace, o.LeaderElectionID = true, ns, lease
	})
	op := operator(t)
	op.Script("pitr", testenv.BRError, testenv.PodDeath, testenv.Succeed)
	require.NoError(t, op.Start(t.Context(), richLogBackup(t, "pitr", quickPolicy)))
	assertRecoveredOnce(t, op)

	l := &coordinationv1.Lease{}
	require.NoError(t, env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: lease}, l))
	require.NotNil(t, l.Spec.HolderIdentity)
	assert.NotEmpty(t, *l.Spec.HolderIdentity)
}

// Without leader election, optimistic concurrency alone keeps two racing reconcilers
// from duplicating a record or a re-run.
func TestTwoReconcilersWithoutLeaderElection(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	startReplicas(t, 2, nil)
	op := operator(t)
	op.Script("pitr", testenv.BRError, testenv.PodDeath, testenv.Succeed)
	require.NoError(t, op.Start(t.Context(), richLogBackup(t, "pitr", quickPolicy)))
	assertRecoveredOnce(t, op)
}
