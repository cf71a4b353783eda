package defaults

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestReadFields(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want Fields
		errs []wantErr
	}{
		{name: "absent", in: nil},
		{name: "empty object", in: map[string]any{}},
		{name: "from encoding/json", in: decode(t, `{"minRetryDuration":"30s","maxRetryTimes":5,"retryTimeout":"30m"}`), want: Fields{s("30s"), i(5), s("30m")}},
		{name: "from unstructured", in: map[string]any{"maxRetryTimes": int64(3)}, want: Fields{MaxRetryTimes: i(3)}},
		{name: "json.Number", in: map[string]any{"maxRetryTimes": json.Number("4")}, want: Fields{MaxRetryTimes: i(4)}},
		{name: "nulls are absent", in: decode(t, `{"minRetryDuration":null,"maxRetryTimes":null}`)},
		{name: "unknown fields ignored", in: decode(t, `{"other":1,"retryTimeout":"1h"}`), want: Fields{RetryTimeout: s("1h")}},
		{name: "not an object", in: "30s", errs: []wantErr{{field.ErrorTypeTypeInvalid, "spec.backoffRetryPolicy"}}},
		{name: "number duration", in: decode(t, `{"minRetryDuration":30}`), errs: []wantErr{{field.ErrorTypeTypeInvalid, "spec.backoffRetryPolicy.minRetryDuration"}}},
		{name: "string count", in: decode(t, `{"maxRetryTimes":"5"}`), errs: []wantErr{{field.ErrorTypeTypeInvalid, "spec.backoffRetryPolicy.maxRetryTimes"}}},
		{name: "fractional count", in: decode(t, `{"maxRetryTimes":1.5}`), errs: []wantErr{{field.ErrorTypeTypeInvalid, "spec.backoffRetryPolicy.maxRetryTimes"}}},
		{name: "count beyond int64", in: decode(t, `{"maxRetryTimes":1e19}`), errs: []wantErr{{field.ErrorTypeTypeInvalid, "spec.backoffRetryPolicy.maxRetryTimes"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := ReadFields(tc.in, policyPath)
			assert.Equal(t, tc.errs, reduce(errs))
			if tc.errs == nil {
				assert.Equal(t, tc.want.Map(), got.Map())
			}
		})
	}
}

func decode(t *testing.T, s string) any {
	var v any
	require.NoError(t, json.Unmarshal([]byte(s), &v))
	return v
}

func TestValidateScheduleRetention(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	spec := field.NewPath("spec")
	tests := []struct {
		name               string
		hasLogTemplate     bool
		maxBackups         *int64
		hasMaxReservedTime bool
		refused            bool
	}{
		{name: "log template, maxBackups, no maxReservedTime: the log backup would be deleted", hasLogTemplate: true, maxBackups: n(2), refused: true},
		{name: "maxReservedTime wins when both are set", hasLogTemplate: true, maxBackups: n(2), hasMaxReservedTime: true},
		{name: "only maxReservedTime", hasLogTemplate: true, hasMaxReservedTime: true},
		{name: "no clean-up at all", hasLogTemplate: true},
		{name: "maxBackups 0 is no clean-up (TiDB Operator skips it)", hasLogTemplate: true, maxBackups: n(0)},
		{name: "no log template: maxBackups is fine", maxBackups: n(2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateScheduleRetention(tt.hasLogTemplate, tt.maxBackups, tt.hasMaxReservedTime, spec)
			if !tt.refused {
				assert.Nil(t, err)
				return
			}
			require.NotNil(t, err)
			assert.Equal(t, "spec.maxBackups", err.Field)
			assert.Equal(t, field.ErrorTypeForbidden, err.Type)
			assert.Contains(t, err.Error(), "tidb-operator#6320")
			assert.Contains(t, err.Error(), "set maxReservedTime instead")
		})
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"longer than that", 6, "longer..."},
		{"héllo", 2, "h..."}, // é is two bytes: not cut in half
		{"", 0, ""},
	} {
		assert.Equal(t, tc.want, Truncate(tc.s, tc.n), tc.s)
	}
}
