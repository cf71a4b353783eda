package defaults

import (
	"testing"
	"time"
)

// FuzzPolicy checks the policy functions on arbitrary values: no panic; a policy that
// validates is still valid after defaulting (defaulting and validation agree); the
// backoff schedule of a valid policy never overflows and only grows.
func FuzzPolicy(f *testing.F) {
	f.Add("30s", int64(5), "30m", uint8(7), false)
	f.Add("300s", int64(2), "30m", uint8(7), false)
	f.Add("1ns", int64(63), "2562047h", uint8(7), true)
	f.Add("30", int64(-1), "1d", uint8(5), false)
	f.Add("", int64(1<<62), "-5s", uint8(3), true)
	f.Fuzz(func(t *testing.T, min string, max int64, timeout string, present uint8, keep bool) {
		in := Fields{}
		if present&1 != 0 {
			in.MinRetryDuration = &min
		}
		if present&2 != 0 {
			in.MaxRetryTimes = &max
		}
		if present&4 != 0 {
			in.RetryTimeout = &timeout
		}
		cfg := DefaultConfig()
		errs, _ := cfg.ValidatePolicy(in, policyPath)
		d := cfg.FillLog(in, keep, policyPath)
		if again := cfg.FillLog(d.Result, keep, policyPath); again.Changed() {
			t.Fatalf("defaulting is not idempotent: %+v then %+v", d.Result.Map(), again.Result.Map())
		}
		if len(errs) > 0 {
			return
		}
		if after, _ := cfg.ValidatePolicy(d.Result, policyPath); len(after) > 0 {
			t.Fatalf("a valid policy %v became invalid after defaulting: %v", in.Map(), after)
		}
		p, perrs := cfg.Effective(d.Result, keep, policyPath)
		if len(perrs) > 0 {
			t.Fatalf("a defaulted policy is not enforceable: %v", perrs)
		}
		var prev time.Duration
		for n := int64(1); n <= p.MaxRetryTimes && n <= 70; n++ {
			delay, ok := p.Delay(n)
			if !ok || delay <= prev {
				t.Fatalf("retry %d of %v: delay %v after %v (ok=%v)", n, p, delay, prev, ok)
			}
			prev = delay
		}
		if fit := p.RetriesWithinTimeout(); fit < 0 || fit > p.MaxRetryTimes {
			t.Fatalf("RetriesWithinTimeout %d out of range for %v", fit, p)
		}
	})
}
