package defaults

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDelay(t *testing.T) {
	tests := []struct {
		name string
		min  time.Duration
		n    int64
		want time.Duration
		ok   bool
	}{
		{"first retry waits min", 30 * time.Second, 1, 30 * time.Second, true},
		{"doubles", 30 * time.Second, 2, time.Minute, true},
		{"fifth", 30 * time.Second, 5, 8 * time.Minute, true},
		{"retry zero is not a retry", 30 * time.Second, 0, 0, false},
		{"negative n", 30 * time.Second, -1, 0, false},
		{"non-positive min", 0, 1, 0, false},
		{"largest for 1ns", 1, 63, 1 << 62, true},
		{"overflow for 1ns", 1, 64, 0, false},
		{"overflow far out", 30 * time.Second, math.MaxInt64, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Delay(tc.min, tc.n)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestMaxRetryWithoutOverflow(t *testing.T) {
	for _, min := range []time.Duration{1, 2, 3, time.Millisecond, 30 * time.Second, 300 * time.Second, math.MaxInt64} {
		n := MaxRetryWithoutOverflow(min)
		d, ok := Delay(min, n)
		assert.True(t, ok, "min %d n %d", min, n)
		assert.Positive(t, d)
		// One more doubling must not fit.
		assert.Greater(t, uint64(min)<<(n-1), uint64(math.MaxInt64)>>1, "min %d n %d is not the largest", min, n)
	}
}

func TestRetriesWithinTimeout(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want int64
	}{
		{"log defaults all fit", BuiltinLogDefaults, 5},
		{"schema defaults all fit", Policy{300 * time.Second, 2, 30 * time.Minute}, 2},
		{"exact fit counts", Policy{time.Minute, 2, 3 * time.Minute}, 2},
		{"one minute short", Policy{time.Minute, 2, 2 * time.Minute}, 1},
		{"timeout below first delay", Policy{5 * time.Minute, 3, time.Minute}, 0},
		{"huge max stops at overflow", Policy{time.Second, math.MaxInt64, math.MaxInt64}, 33},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.p.RetriesWithinTimeout())
		})
	}
	assert.Equal(t, time.Duration(math.MaxInt64), Policy{MinRetryDuration: time.Second}.ScheduleAt(100))
	assert.Equal(t, 7*time.Minute, Policy{MinRetryDuration: time.Minute}.ScheduleAt(3))
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Second:       "30s",
		30 * time.Minute:       "30m",
		time.Hour:              "1h",
		90 * time.Minute:       "1h30m",
		90 * time.Second:       "1m30s",
		300 * time.Millisecond: "300ms",
		0:                      "0s",
	} {
		assert.Equal(t, want, FormatDuration(d))
		back, err := time.ParseDuration(want)
		assert.NoError(t, err)
		assert.Equal(t, d, back)
	}
}
