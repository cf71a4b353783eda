package app

import (
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
)

func parse(t *testing.T, env map[string]string, args ...string) *Options {
	t.Helper()
	o := NewOptions()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	require.NoError(t, fs.Parse(args))
	o.BindEnv(fs, func(k string) string { return env[k] })
	return o
}

func TestPolicyDefaultsPrecedence(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want defaults.Policy
	}{
		{name: "built-in", want: defaults.BuiltinLogDefaults},
		{
			name: "environment",
			env:  map[string]string{EnvMinRetryDuration: "1m", EnvMaxRetries: "3", EnvRetryTimeout: "2h"},
			want: defaults.Policy{MinRetryDuration: time.Minute, MaxRetryTimes: 3, RetryTimeout: 2 * time.Hour},
		},
		{
			name: "flags win over the environment",
			env:  map[string]string{EnvMinRetryDuration: "1m", EnvMaxRetries: "3"},
			args: []string{"--log-backup-min-retry-duration=10s", "--log-backup-max-retries=0"},
			want: defaults.Policy{MinRetryDuration: 10 * time.Second, MaxRetryTimes: 0, RetryTimeout: 30 * time.Minute},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := parse(t, tc.env, tc.args...)
			require.Empty(t, o.Validate())
			cfg, errs := o.DefaultsConfig()
			require.Empty(t, errs)
			assert.Equal(t, tc.want, cfg.LogDefaults)
			assert.True(t, cfg.ReplaceSchemaDefaults)
		})
	}
	o := parse(t, nil, "--replace-schema-defaults=false")
	cfg, _ := o.DefaultsConfig()
	assert.False(t, cfg.ReplaceSchemaDefaults)
}

func TestOptionsValidate(t *testing.T) {
	type e struct {
		Type  field.ErrorType
		Field string
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []e
	}{
		{name: "valid"},
		{name: "bad duration flag", args: []string{"--log-backup-min-retry-duration=30"}, want: []e{{field.ErrorTypeInvalid, "--log-backup-min-retry-duration (or LOG_BACKUP_MIN_RETRY_DURATION)"}}},
		{name: "bad env", env: map[string]string{EnvRetryTimeout: "1d"}, want: []e{{field.ErrorTypeInvalid, "--log-backup-retry-timeout (or LOG_BACKUP_RETRY_TIMEOUT)"}}},
		{name: "not a number", env: map[string]string{EnvMaxRetries: "five"}, want: []e{{field.ErrorTypeInvalid, "--log-backup-max-retries (or LOG_BACKUP_MAX_RETRIES)"}}},
		{name: "a number flag takes only numbers", args: []string{"--log-backup-max-retries=5"}},
		{name: "overflowing defaults", args: []string{"--log-backup-max-retries=100"}, want: []e{{field.ErrorTypeInvalid, "--log-backup-max-retries (or LOG_BACKUP_MAX_RETRIES)"}}},
		{name: "unknown component", args: []string{"--components=webhook,cron"}, want: []e{{field.ErrorTypeNotSupported, "--components[1]"}}},
		{name: "no component", args: []string{"--components="}, want: []e{{field.ErrorTypeRequired, "--components"}}},
		{name: "bad port", args: []string{"--webhook-port=0"}, want: []e{{field.ErrorTypeInvalid, "--webhook-port"}}},
		{name: "bad TLS version", args: []string{"--tls-min-version=1.1"}, want: []e{{field.ErrorTypeNotSupported, "--tls-min-version"}}},
		{name: "kernel probe on, default templates", args: []string{"--kernel-probe=pd-etcd"}},
		{name: "kernel probe with TLS", args: []string{"--kernel-probe=pd-etcd", "--kernel-pd-endpoint=https://{cluster}-pd.{namespace}:2379",
			"--kernel-tls-secret={cluster}-cluster-client-secret"}},
		{name: "unknown kernel probe", args: []string{"--kernel-probe=tikv"}, want: []e{{field.ErrorTypeNotSupported, "--kernel-probe"}}},
		{name: "TLS over http", args: []string{"--kernel-probe=pd-etcd", "--kernel-tls-secret=s"}, want: []e{{field.ErrorTypeInvalid, "--kernel-pd-endpoint"}}},
		{name: "unknown placeholder", args: []string{"--kernel-probe=pd-etcd", "--kernel-pd-endpoint=http://{tc}-pd:2379"}, want: []e{{field.ErrorTypeInvalid, "--kernel-pd-endpoint"}}},
		{name: "zero probe timeout", args: []string{"--kernel-probe=pd-etcd", "--kernel-probe-timeout=0s"}, want: []e{{field.ErrorTypeInvalid, "--kernel-probe-timeout"}}},
		{name: "templates are not checked while the probe is off", args: []string{"--kernel-pd-endpoint=nonsense"}},
		{name: "negative write guard", args: []string{"--write-guard-limit=-1"}, want: []e{{field.ErrorTypeInvalid, "--write-guard-limit"}}},
		{name: "write guard without a window", args: []string{"--write-guard-window=0s"}, want: []e{{field.ErrorTypeInvalid, "--write-guard-window"}}},
		{name: "write guard without a cooldown", args: []string{"--write-guard-cooldown=0s"}, want: []e{{field.ErrorTypeInvalid, "--write-guard-cooldown"}}},
		{name: "write guard off ignores its durations", args: []string{"--write-guard-limit=0", "--write-guard-window=0s"}},
		{name: "watched namespaces", args: []string{"--watch-namespaces=tenant-a,tenant-b"}},
		{name: "a watched namespace that cannot be one", args: []string{"--watch-namespaces=tenant-a,Tenant_B"},
			want: []e{{field.ErrorTypeInvalid, "--watch-namespaces[1]"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []e
			for _, err := range parse(t, tc.env, tc.args...).Validate() {
				got = append(got, e{err.Type, err.Field})
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// A number flag is a number: a word is refused when the flags are parsed.
func TestNumberFlagsAreTyped(t *testing.T) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	NewOptions().AddFlags(fs)
	assert.ErrorContains(t, fs.Parse([]string{"--log-backup-max-retries=five"}), "log-backup-max-retries")
}
