package defaults

import (
	"fmt"
	"strings"
	"time"
)

// JSON field names of spec.backoffRetryPolicy, as TiDB Operator's CRD spells them.
const (
	FieldPolicy           = "backoffRetryPolicy"
	FieldMinRetryDuration = "minRetryDuration"
	FieldMaxRetryTimes    = "maxRetryTimes"
	FieldRetryTimeout     = "retryTimeout"
)

// KeepSchemaDefaultsAnnotation opts one object out of the schema-default replacement:
// with the value "true" a policy equal to the CRD's snapshot defaults is kept as is.
const KeepSchemaDefaultsAnnotation = "tidb-backup-guard.io/keep-schema-defaults"

// Policy is a complete, parsed retry policy.
type Policy struct {
	// MinRetryDuration is the delay before the first retry; retry n waits
	// MinRetryDuration << (n-1).
	MinRetryDuration time.Duration
	// MaxRetryTimes is the number of retries allowed in one failure episode; 0 disables
	// retries.
	MaxRetryTimes int64
	// RetryTimeout bounds an episode, measured from its first detected failure.
	RetryTimeout time.Duration
}

// String renders the policy the way it is written on an object.
func (p Policy) String() string {
	return fmt.Sprintf("%s / %d / %s", FormatDuration(p.MinRetryDuration), p.MaxRetryTimes, FormatDuration(p.RetryTimeout))
}

// Fields renders the policy as the field values written on an object.
func (p Policy) Fields() Fields {
	return Fields{
		MinRetryDuration: ptr(FormatDuration(p.MinRetryDuration)),
		MaxRetryTimes:    ptr(p.MaxRetryTimes),
		RetryTimeout:     ptr(FormatDuration(p.RetryTimeout)),
	}
}

// Fields is a retry policy as written on an object. A nil field is absent; present values
// are kept verbatim (unparsed) so that a policy can be compared, reported and patched
// without changing how the user wrote it.
type Fields struct {
	MinRetryDuration *string
	MaxRetryTimes    *int64
	RetryTimeout     *string
}

// IsEmpty reports whether no field is set.
func (f Fields) IsEmpty() bool {
	return f.MinRetryDuration == nil && f.MaxRetryTimes == nil && f.RetryTimeout == nil
}

// Equal reports whether both hold the same fields with the same raw values.
func (f Fields) Equal(o Fields) bool {
	return eqPtr(f.MinRetryDuration, o.MinRetryDuration) &&
		eqPtr(f.MaxRetryTimes, o.MaxRetryTimes) &&
		eqPtr(f.RetryTimeout, o.RetryTimeout)
}

// SchemaDefaults are the values TiDB Operator's CRD schema fills into
// spec.backoffRetryPolicy (tuned for snapshot backups). The API server applies them
// before any admission webhook runs, whenever the policy object is present.
var SchemaDefaults = Fields{
	MinRetryDuration: ptr("300s"),
	MaxRetryTimes:    ptr(int64(2)),
	RetryTimeout:     ptr("30m"),
}

// BuiltinLogDefaults is the policy given to log backups unless start-up options say
// otherwise: retry quickly (30s), a few times (5), within the window (30m) in which a log
// backup's checkpoint lag is still tolerable.
var BuiltinLogDefaults = Policy{
	MinRetryDuration: 30 * time.Second,
	MaxRetryTimes:    5,
	RetryTimeout:     30 * time.Minute,
}

// Config is what a running server knows about defaulting.
type Config struct {
	// LogDefaults fills missing policy fields of log backups.
	LogDefaults Policy
	// ReplaceSchemaDefaults treats a log backup's policy that holds exactly the CRD's
	// snapshot defaults as unset (see FillLog).
	ReplaceSchemaDefaults bool
}

// DefaultConfig is the configuration used when no option changes it.
func DefaultConfig() Config {
	return Config{LogDefaults: BuiltinLogDefaults, ReplaceSchemaDefaults: true}
}

// FormatDuration writes d the shortest way Go's time.ParseDuration reads back, without
// the zero components time.Duration.String adds ("30m", not "30m0s").
func FormatDuration(d time.Duration) string {
	s := d.String()
	// "1h0m0s" -> "1h0m" -> "1h"; "10m0s" -> "10m"; "100ms" and "90s" stay.
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
