package defaults

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestParseOverride(t *testing.T) {
	path := field.NewPath("data").Key("team-a")
	tests := []struct {
		name, ns, value string
		want            Policy
		wantErr         string
	}{
		{name: "all fields", ns: "team-a", value: "minRetryDuration: 1m\nmaxRetryTimes: 3\nretryTimeout: 1h",
			want: Policy{MinRetryDuration: time.Minute, MaxRetryTimes: 3, RetryTimeout: time.Hour}},
		{name: "JSON, one field: the rest from the server", ns: "team-a", value: `{"maxRetryTimes": 9}`,
			want: Policy{MinRetryDuration: 30 * time.Second, MaxRetryTimes: 9, RetryTimeout: 30 * time.Minute}},
		{name: "zero retries is a policy", ns: "team-a", value: "maxRetryTimes: 0",
			want: Policy{MinRetryDuration: 30 * time.Second, RetryTimeout: 30 * time.Minute}},
		{name: "bad duration", ns: "team-a", value: "minRetryDuration: 1d",
			wantErr: `data[team-a].minRetryDuration: Invalid value: "1d": must be a Go duration such as 30s or 5m (unknown unit "d")`},
		{name: "misspelt field", ns: "team-a", value: "maxRetryTime: 3", wantErr: `unknown field "maxRetryTime"`},
		{name: "empty", ns: "team-a", value: "", wantErr: "sets none of"},
		{name: "not YAML", ns: "team-a", value: "[", wantErr: "must be a retry policy"},
		{name: "overflow", ns: "team-a", value: "minRetryDuration: 1000h\nmaxRetryTimes: 40",
			wantErr: "data[team-a].maxRetryTimes: Invalid value: 40: must be at most"},
		{name: "negative", ns: "team-a", value: "maxRetryTimes: -1", wantErr: "must be greater than or equal to 0"},
		{name: "key is not a namespace", ns: "Team_A", value: "maxRetryTimes: 3", wantErr: "the key must be a namespace name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, errs := DefaultConfig().ParseOverride(tt.ns, tt.value, path)
			if tt.wantErr != "" {
				require.NotEmpty(t, errs)
				assert.Contains(t, errs.ToAggregate().Error(), tt.wantErr)
				return
			}
			require.Empty(t, errs)
			assert.Equal(t, tt.want, p)
		})
	}
}

func TestNamespacePoliciesKeepTheLastGoodValue(t *testing.T) {
	path := field.NewPath("data")
	n := NewNamespacePolicies(DefaultConfig())
	assert.Equal(t, BuiltinLogDefaults, n.For("team-a").LogDefaults, "no override yet")

	require.Empty(t, n.Update(map[string]string{"team-a": "maxRetryTimes: 3", "team-b": "minRetryDuration: 10s"}, path))
	assert.Equal(t, int64(3), n.For("team-a").LogDefaults.MaxRetryTimes)
	assert.Equal(t, 10*time.Second, n.For("team-b").LogDefaults.MinRetryDuration)
	assert.Equal(t, BuiltinLogDefaults, n.For("other").LogDefaults)
	assert.True(t, n.For("team-a").ReplaceSchemaDefaults, "only the log defaults are overridden")

	// A typo in team-a: reported, and team-a keeps 3; team-b's new value applies.
	errs := n.Update(map[string]string{"team-a": "maxRetryTimes: three", "team-b": "minRetryDuration: 20s", "team-c": "x: 1"}, path)
	require.Len(t, errs, 2)
	assert.Equal(t, "data[team-a]", errs[0].Field)
	assert.Equal(t, "data[team-c]", errs[1].Field)
	assert.Equal(t, int64(3), n.For("team-a").LogDefaults.MaxRetryTimes, "last good value kept")
	assert.Equal(t, 20*time.Second, n.For("team-b").LogDefaults.MinRetryDuration)
	assert.Equal(t, BuiltinLogDefaults, n.For("team-c").LogDefaults, "never good: server defaults")
	assert.Equal(t, []Override{
		{Namespace: "team-a", Policy: "30s / 3 / 30m", Stale: true},
		{Namespace: "team-b", Policy: "20s / 5 / 30m"},
	}, n.Overrides())

	// Fixed, then removed.
	require.Empty(t, n.Update(map[string]string{"team-a": "maxRetryTimes: 4"}, path))
	assert.Equal(t, int64(4), n.For("team-a").LogDefaults.MaxRetryTimes)
	assert.Equal(t, BuiltinLogDefaults, n.For("team-b").LogDefaults, "entry removed: server defaults")
	require.Empty(t, n.Update(nil, path))
	assert.Equal(t, BuiltinLogDefaults, n.For("team-a").LogDefaults)
}
