package defaults

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestFillLog(t *testing.T) {
	logDefaults := Fields{s("30s"), i(5), s("30m")}
	tests := []struct {
		name     string
		cfg      Config
		keep     bool
		in       Fields
		want     Fields
		set      []string
		replaced []string
		warnings int
	}{
		{
			name: "absent policy gets every default",
			cfg:  DefaultConfig(), in: Fields{}, want: logDefaults,
			set: []string{"minRetryDuration", "maxRetryTimes", "retryTimeout"}, warnings: 1,
		},
		{
			name: "user values are kept, missing filled",
			cfg:  DefaultConfig(), in: Fields{MaxRetryTimes: i(9)}, want: Fields{s("30s"), i(9), s("30m")},
			set: []string{"minRetryDuration", "retryTimeout"}, warnings: 1,
		},
		{
			name: "complete user policy untouched",
			cfg:  DefaultConfig(), in: Fields{s("1m"), i(3), s("1h")}, want: Fields{s("1m"), i(3), s("1h")},
		},
		{
			name: "schema defaults replaced",
			cfg:  DefaultConfig(), in: SchemaDefaults, want: logDefaults,
			replaced: []string{"minRetryDuration", "maxRetryTimes"}, warnings: 1,
		},
		{
			name: "present fields all schema defaults: treated as unset",
			cfg:  DefaultConfig(), in: Fields{MinRetryDuration: s("300s"), MaxRetryTimes: i(2)}, want: logDefaults,
			set: []string{"retryTimeout"}, replaced: []string{"minRetryDuration", "maxRetryTimes"}, warnings: 1,
		},
		{
			name: "schema defaults kept by annotation",
			cfg:  DefaultConfig(), keep: true, in: SchemaDefaults, want: SchemaDefaults,
		},
		{
			name: "schema defaults kept when replacement is off",
			cfg:  Config{LogDefaults: BuiltinLogDefaults}, in: SchemaDefaults, want: SchemaDefaults,
		},
		{
			name: "partial match kept with a hint",
			cfg:  DefaultConfig(), in: Fields{s("300s"), i(7), s("30m")}, want: Fields{s("300s"), i(7), s("30m")},
			warnings: 1,
		},
		{
			name: "5m is not the schema literal",
			cfg:  DefaultConfig(), in: Fields{s("5m"), i(2), s("30m")}, want: Fields{s("5m"), i(2), s("30m")},
			warnings: 1, // maxRetryTimes 2 is hinted
		},
		{
			name: "malformed values are left to validation",
			cfg:  DefaultConfig(), in: Fields{s("30"), i(5), s("30m")}, want: Fields{s("30"), i(5), s("30m")},
		},
		{
			name: "configured defaults equal to schema defaults change nothing",
			cfg:  Config{LogDefaults: Policy{300 * time.Second, 2, 30 * time.Minute}, ReplaceSchemaDefaults: true},
			in:   SchemaDefaults, want: SchemaDefaults,
		},
		{
			name: "configured defaults are what fills",
			cfg:  Config{LogDefaults: Policy{time.Minute, 1, time.Hour}, ReplaceSchemaDefaults: true},
			in:   SchemaDefaults, want: Fields{s("1m"), i(1), s("1h")},
			replaced: []string{"minRetryDuration", "maxRetryTimes", "retryTimeout"}, warnings: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.cfg.FillLog(tc.in, tc.keep, policyPath)
			assert.Equal(t, tc.want.Map(), got.Result.Map())
			assert.Equal(t, tc.set, got.Set)
			assert.Equal(t, tc.replaced, got.Replaced)
			assert.Equal(t, len(tc.set)+len(tc.replaced) > 0, got.Changed())
			assert.Len(t, got.Warnings, tc.warnings, "%v", got.Warnings)
			for _, w := range got.Warnings {
				assert.LessOrEqual(t, len(w), 120, w)
			}
			// Idempotence: defaulting the result again changes nothing.
			again := tc.cfg.FillLog(got.Result, tc.keep, policyPath)
			assert.False(t, again.Changed(), "second pass changed %v %v", again.Set, again.Replaced)
		})
	}
}

func TestFillLogWarningText(t *testing.T) {
	got := DefaultConfig().FillLog(SchemaDefaults, false, policyPath)
	assert.Equal(t, []string{"spec.backoffRetryPolicy: replaced the CRD's snapshot defaults with the log-backup policy 30s / 5 / 30m"}, got.Warnings)
	got = DefaultConfig().FillLog(Fields{}, false, policyPath)
	assert.Equal(t, []string{"spec.backoffRetryPolicy: defaulted all fields from the log-backup policy 30s / 5 / 30m"}, got.Warnings)
}

// A defaulted policy always validates: the webhook can never produce what it rejects.
func TestFilledPolicyValidates(t *testing.T) {
	for _, in := range []Fields{{}, SchemaDefaults, {MaxRetryTimes: i(0)}, {RetryTimeout: s("2h")}} {
		got := DefaultConfig().FillLog(in, false, policyPath)
		errs, _ := Validate(got.Result, policyPath)
		assert.Empty(t, errs)
	}
}
