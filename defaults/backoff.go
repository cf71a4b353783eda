package defaults

import (
	"math/bits"
	"time"
)

// Delay returns the wait before retry n (1-based) of an episode: min << (n-1), the same
// schedule TiDB Operator uses for snapshot backups. ok is false when n < 1, min <= 0, or
// the delay does not fit in a time.Duration.
func Delay(min time.Duration, n int64) (d time.Duration, ok bool) {
	if n < 1 || min <= 0 || n > MaxRetryWithoutOverflow(min) {
		return 0, false
	}
	return min << (n - 1), true
}

// MaxRetryWithoutOverflow is the largest n for which Delay(min, n) fits in a
// time.Duration; 0 when min <= 0.
func MaxRetryWithoutOverflow(min time.Duration) int64 {
	if min <= 0 {
		return 0
	}
	// min << k stays below 2^63 while k <= 63 - bitlen(min).
	return int64(64 - bits.Len64(uint64(min)))
}

// Delay returns the wait before retry n under this policy (see the package function).
func (p Policy) Delay(n int64) (time.Duration, bool) { return Delay(p.MinRetryDuration, n) }

// RetriesWithinTimeout counts the retries that can start at all: retry n starts no earlier
// than the sum of the first n delays after the episode's first failure, and a retry later
// than RetryTimeout never runs. The count ignores the time each attempt runs, so it is an
// upper bound.
func (p Policy) RetriesWithinTimeout() int64 {
	var elapsed time.Duration
	for n := int64(1); n <= p.MaxRetryTimes; n++ {
		d, ok := p.Delay(n)
		if !ok || elapsed > p.RetryTimeout-d {
			return n - 1
		}
		elapsed += d
	}
	return p.MaxRetryTimes
}

// ScheduleAt returns how long after the episode's first failure retry n starts at the
// earliest (the sum of the first n delays), saturating at the largest Duration.
func (p Policy) ScheduleAt(n int64) time.Duration {
	var elapsed time.Duration
	for k := int64(1); k <= n; k++ {
		d, ok := p.Delay(k)
		if !ok || elapsed > time.Duration(1<<63-1)-d {
			return time.Duration(1<<63 - 1)
		}
		elapsed += d
	}
	return elapsed
}
