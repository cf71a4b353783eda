package reconciler

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
)

// WriteGuard is the last line of defence against a write loop: a bug of ours, or a fight
// with another controller over the same fields. Decisions are built to come to rest (see
// the property test of Decide), but should a future path not, one Backup must not flood
// the API server, nor starve the others. Each Backup gets a token bucket of Limit writes
// that refills over Window; a Backup whose bucket is empty is not written for Cooldown.
// Other Backups are unaffected. Only successful writes of the Backup take a token:
// conflicts are contention with TiDB Operator, expected and already bounded.
type WriteGuard struct {
	// Limit is how many writes of one Backup may come in a burst; Window is how long the
	// bucket takes to refill from empty.
	Limit  int
	Window time.Duration
	// Cooldown is how long writes stay suspended once the bucket is empty.
	Cooldown time.Duration

	mu      sync.Mutex
	backups map[types.NamespacedName]*guarded
}

type guarded struct {
	bucket *rate.Limiter
	// until is when a suspension ends (zero: not suspended).
	until time.Time
}

// Default write guard: a retry episode writes about twice per retry, and retries are
// seconds apart at the very least (each runs a Job), so 20 writes in a minute is far
// beyond any legitimate episode and far below a hot loop (one seen before the come-to-rest property was tested wrote 80 a second).
const (
	DefaultWriteGuardLimit    = 20
	DefaultWriteGuardWindow   = time.Minute
	DefaultWriteGuardCooldown = 10 * time.Minute
)

// Check reports whether a Backup may be written at now. When it may not, until is when
// it may again, and tripped is true for the check that suspended it (the caller reports
// that once).
func (g *WriteGuard) Check(key types.NamespacedName, now time.Time) (until time.Time, tripped, blocked bool) {
	if g == nil {
		return time.Time{}, false, false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.get(key)
	if now.Before(b.until) {
		return b.until, false, true
	}
	if b.bucket.TokensAt(now) >= 1 {
		return time.Time{}, false, false
	}
	b.until = now.Add(g.Cooldown)
	return b.until, true, true
}

// Wrote takes a token for a successful write.
func (g *WriteGuard) Wrote(key types.NamespacedName, now time.Time) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.get(key).bucket.AllowN(now, 1)
}

// Forget drops what the guard holds for a Backup (it is gone).
func (g *WriteGuard) Forget(key types.NamespacedName) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.backups, key)
}

func (g *WriteGuard) get(key types.NamespacedName) *guarded {
	if g.backups == nil {
		g.backups = map[types.NamespacedName]*guarded{}
	}
	b, ok := g.backups[key]
	if !ok {
		b = &guarded{bucket: rate.NewLimiter(rate.Limit(float64(g.Limit)/g.Window.Seconds()), g.Limit)}
		g.backups[key] = b
	}
	return b
}
