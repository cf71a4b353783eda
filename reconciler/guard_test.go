package reconciler

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry/retrytest"
)

func TestWriteGuard(t *testing.T) {
	g := &WriteGuard{Limit: 3, Window: time.Minute, Cooldown: 10 * time.Minute}
	loop := types.NamespacedName{Namespace: "ns", Name: "loop"}
	other := types.NamespacedName{Namespace: "ns", Name: "other"}
	now := retrytest.T0

	// A hot loop: three writes pass, the fourth is refused and trips the guard once.
	for i := 0; i < 3; i++ {
		_, _, blocked := g.Check(loop, now)
		assert.False(t, blocked, "write %d", i+1)
		g.Wrote(loop, now)
		now = now.Add(10 * time.Millisecond)
	}
	until, tripped, blocked := g.Check(loop, now)
	assert.True(t, blocked)
	assert.True(t, tripped, "the check that suspends reports it")
	assert.Equal(t, now.Add(10*time.Minute), until)
	_, tripped, blocked = g.Check(loop, now.Add(time.Minute))
	assert.True(t, blocked, "suspended for the whole cooldown")
	assert.False(t, tripped, "reported once per suspension")

	// Other Backups keep going.
	_, _, blocked = g.Check(other, now)
	assert.False(t, blocked)

	// After the cooldown the bucket has refilled.
	_, _, blocked = g.Check(loop, until)
	assert.False(t, blocked)

	// Writes spread over the window never trip it: a retry episode's pace.
	g.Forget(loop)
	for i := 0; i < 30; i++ {
		_, _, blocked := g.Check(loop, now)
		assert.False(t, blocked, "write %d", i+1)
		g.Wrote(loop, now)
		now = now.Add(30 * time.Second)
	}

	// A nil guard allows everything.
	var off *WriteGuard
	_, _, blocked = off.Check(loop, now)
	assert.False(t, blocked)
	off.Wrote(loop, now)
	off.Forget(loop)
}
