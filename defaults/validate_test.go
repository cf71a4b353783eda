package defaults

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var policyPath = field.NewPath("spec", "backoffRetryPolicy")

func s(v string) *string { return &v }
func i(v int64) *int64   { return &v }

// wantErr is a field error reduced to what tests may depend on: type and path.
type wantErr struct {
	Type  field.ErrorType
	Field string
}

func reduce(errs field.ErrorList) []wantErr {
	var out []wantErr
	for _, e := range errs {
		out = append(out, wantErr{e.Type, e.Field})
	}
	return out
}

func TestValidate(t *testing.T) {
	const (
		minF     = "spec.backoffRetryPolicy.minRetryDuration"
		maxF     = "spec.backoffRetryPolicy.maxRetryTimes"
		timeoutF = "spec.backoffRetryPolicy.retryTimeout"
	)
	valid := func(min string) Fields { return Fields{s(min), i(5), s("30m")} }
	tests := []struct {
		name     string
		in       Fields
		want     []wantErr
		warnings int
	}{
		{name: "empty policy", in: Fields{}},
		{name: "log defaults", in: valid("30s")},
		{name: "schema defaults", in: Fields{s("300s"), i(2), s("30m")}},
		{name: "fractional hours", in: Fields{s("1.5h"), i(0), s("2h")}},
		{name: "milliseconds", in: valid("300ms")},
		{name: "zero retries disables retry", in: Fields{s("30s"), i(0), s("30m")}},
		{name: "missing unit", in: valid("30"), want: []wantErr{{field.ErrorTypeInvalid, minF}}},
		{name: "day unit", in: valid("1d"), want: []wantErr{{field.ErrorTypeInvalid, minF}}},
		{name: "negative", in: valid("-5s"), want: []wantErr{{field.ErrorTypeInvalid, minF}}},
		{name: "zero", in: valid("0s"), want: []wantErr{{field.ErrorTypeInvalid, minF}}},
		{name: "empty string", in: valid(""), want: []wantErr{{field.ErrorTypeInvalid, minF}}},
		{name: "words", in: valid("abc"), want: []wantErr{{field.ErrorTypeInvalid, minF}}},
		{name: "bad timeout", in: Fields{s("30s"), i(5), s("1d")}, want: []wantErr{{field.ErrorTypeInvalid, timeoutF}}},
		{name: "negative retries", in: Fields{s("30s"), i(-1), s("30m")}, want: []wantErr{{field.ErrorTypeInvalid, maxF}}},
		{name: "huge retries overflow", in: Fields{s("30s"), i(1 << 40), s("30m")}, want: []wantErr{{field.ErrorTypeInvalid, maxF}}},
		{name: "largest retry that fits", in: Fields{s("1ns"), i(63), s("30m")}, warnings: 1},
		{name: "one past the largest", in: Fields{s("1ns"), i(64), s("30m")}, want: []wantErr{{field.ErrorTypeInvalid, maxF}}},
		{
			name: "every field wrong",
			in:   Fields{s("30"), i(-3), s("-1m")},
			want: []wantErr{{field.ErrorTypeInvalid, minF}, {field.ErrorTypeInvalid, timeoutF}, {field.ErrorTypeInvalid, maxF}},
		},
		{name: "timeout shorter than first delay", in: Fields{s("5m"), i(3), s("1m")}, warnings: 1},
		{name: "later retries past timeout", in: Fields{s("1m"), i(10), s("30m")}, warnings: 1},
		{name: "timeout warnings off with zero retries", in: Fields{s("5m"), i(0), s("1m")}},
		// Found by fuzzing: valid alone, invalid once defaulting fills minRetryDuration.
		{name: "unset min checked against the largest default", in: Fields{MaxRetryTimes: i(63)}, want: []wantErr{{field.ErrorTypeInvalid, maxF}}},
		{name: "unset min with a retry count that fits", in: Fields{MaxRetryTimes: i(25)}},
		{name: "unset max checked against the largest default", in: Fields{MinRetryDuration: s("700000000s")}, want: []wantErr{{field.ErrorTypeInvalid, minF}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs, warnings := Validate(tc.in, policyPath)
			assert.Equal(t, tc.want, reduce(errs))
			assert.Len(t, warnings, tc.warnings, "%v", warnings)
			for _, w := range warnings {
				assert.LessOrEqual(t, len(w), 120, w)
			}
		})
	}
}

func TestValidateDetail(t *testing.T) {
	// The detail names the cause, in the words users see in kubectl's error.
	for in, want := range map[string]string{
		"30":  "must be a Go duration such as 30s or 5m (missing unit)",
		"1d":  `must be a Go duration such as 30s or 5m (unknown unit "d")`,
		"":    "must be a Go duration such as 30s or 5m (empty)",
		"-5s": "must be greater than 0",
	} {
		_, detail := ParseDuration(in)
		assert.Equal(t, want, detail, in)
	}
}

func TestScheduleWarningText(t *testing.T) {
	_, warnings := Validate(Fields{s("1m"), i(10), s("30m")}, policyPath)
	require.Len(t, warnings, 1)
	// 1+2+4+8 = 15m fits, retry 5 would start 31m after the first failure.
	assert.Equal(t, "spec.backoffRetryPolicy: only 4 of 10 retries fit in retryTimeout 30m (retry 5 starts 31m after the first failure)", warnings[0])
}

func TestConfigEffective(t *testing.T) {
	cfg := DefaultConfig()
	tests := []struct {
		name string
		in   Fields
		keep bool
		want Policy
		errs int
	}{
		{name: "absent policy gets log defaults", in: Fields{}, want: BuiltinLogDefaults},
		{name: "the CRD's snapshot defaults read as unset", in: Fields{s("300s"), i(2), s("30m")}, want: BuiltinLogDefaults},
		{name: "the CRD's snapshot defaults kept by the opt-out", in: Fields{s("300s"), i(2), s("30m")}, keep: true, want: Policy{300 * time.Second, 2, 30 * time.Minute}},
		{name: "partial policy keeps what is set", in: Fields{MaxRetryTimes: i(0)}, want: Policy{30 * time.Second, 0, 30 * time.Minute}},
		{name: "full policy as written", in: Fields{s("1m"), i(3), s("1h")}, want: Policy{time.Minute, 3, time.Hour}},
		{name: "malformed policy", in: Fields{MinRetryDuration: s("30")}, errs: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := cfg.Effective(tc.in, tc.keep, policyPath)
			assert.Len(t, errs, tc.errs)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestConfigValidate(t *testing.T) {
	assert.Empty(t, DefaultConfig().Validate(field.NewPath("defaults")))
	bad := Config{LogDefaults: Policy{MinRetryDuration: 0, MaxRetryTimes: 5, RetryTimeout: time.Minute}}
	assert.Equal(t, []wantErr{{field.ErrorTypeInvalid, "defaults.minRetryDuration"}}, reduce(bad.Validate(field.NewPath("defaults"))))
}
