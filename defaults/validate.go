package defaults

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ParseDuration parses a policy duration the way TiDB Operator will (time.ParseDuration)
// and requires it to be positive. On failure it returns the detail for a field error.
func ParseDuration(s string) (time.Duration, string) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, "must be a Go duration such as 30s or 5m (" + durationProblem(s, err) + ")"
	}
	if d <= 0 {
		return 0, "must be greater than 0"
	}
	return d, ""
}

// durationProblem names what is wrong with s in a few words. time.ParseDuration's errors
// repeat the input ("time: unknown unit \"d\" in duration \"1d\""); the field error shows
// the value already, so keep only the cause.
func durationProblem(s string, err error) string {
	if strings.TrimSpace(s) == "" {
		return "empty"
	}
	msg := strings.TrimPrefix(err.Error(), "time: ")
	if i := strings.Index(msg, " in duration "); i > 0 {
		return msg[:i] // "missing unit", "unknown unit \"d\""
	}
	var numErr interface{ Unwrap() error }
	if errors.As(err, &numErr) {
		return "invalid number"
	}
	return "not a number followed by a unit"
}

// Validate checks a retry policy with the built-in defaults (see Config.ValidatePolicy).
func Validate(f Fields, fldPath *field.Path) (field.ErrorList, []string) {
	return DefaultConfig().ValidatePolicy(f, fldPath)
}

// ValidatePolicy checks a retry policy as written on an object, for any backup mode.
// Errors are values TiDB Operator or the reconciler cannot use; warnings describe values
// that work, but not as their author probably meant (computed only for a complete, valid
// policy).
//
// A missing minRetryDuration is checked against the largest value that could fill it
// (the CRD's schema default or the configured log default), so a policy that validates
// stays valid whatever defaulting happens later.
func (c Config) ValidatePolicy(f Fields, fldPath *field.Path) (field.ErrorList, []string) {
	var errs field.ErrorList
	var minD, timeout time.Duration
	if f.MinRetryDuration != nil {
		d, detail := ParseDuration(*f.MinRetryDuration)
		if detail != "" {
			errs = append(errs, field.Invalid(fldPath.Child(FieldMinRetryDuration), *f.MinRetryDuration, detail))
		}
		minD = d
	}
	if f.RetryTimeout != nil {
		d, detail := ParseDuration(*f.RetryTimeout)
		if detail != "" {
			errs = append(errs, field.Invalid(fldPath.Child(FieldRetryTimeout), *f.RetryTimeout, detail))
		}
		timeout = d
	}
	if f.MaxRetryTimes != nil {
		n := *f.MaxRetryTimes
		switch {
		case n < 0:
			errs = append(errs, field.Invalid(fldPath.Child(FieldMaxRetryTimes), n, "must be greater than or equal to 0"))
		case minD > 0 && n > MaxRetryWithoutOverflow(minD):
			errs = append(errs, field.Invalid(fldPath.Child(FieldMaxRetryTimes), n, fmt.Sprintf(
				"must be at most %d with minRetryDuration %s: the delay of retry %d overflows",
				MaxRetryWithoutOverflow(minD), *f.MinRetryDuration, n)))
		case f.MinRetryDuration == nil && n > MaxRetryWithoutOverflow(c.largestDefaultMin()):
			errs = append(errs, field.Invalid(fldPath.Child(FieldMaxRetryTimes), n, fmt.Sprintf(
				"must be at most %d when minRetryDuration is unset (it may default to %s): the delay of retry %d overflows",
				MaxRetryWithoutOverflow(c.largestDefaultMin()), FormatDuration(c.largestDefaultMin()), n)))
		}
	}
	if f.MaxRetryTimes == nil && minD > 0 && c.largestDefaultMax() > MaxRetryWithoutOverflow(minD) {
		errs = append(errs, field.Invalid(fldPath.Child(FieldMinRetryDuration), *f.MinRetryDuration, fmt.Sprintf(
			"is too long when maxRetryTimes is unset (it may default to %d): the delay of retry %d overflows",
			c.largestDefaultMax(), c.largestDefaultMax())))
	}
	if len(errs) > 0 || f.MinRetryDuration == nil || f.MaxRetryTimes == nil || f.RetryTimeout == nil {
		return errs, nil
	}
	return nil, scheduleWarnings(Policy{MinRetryDuration: minD, MaxRetryTimes: *f.MaxRetryTimes, RetryTimeout: timeout}, fldPath)
}

// scheduleWarnings reports retries that the timeout makes impossible.
func scheduleWarnings(p Policy, fldPath *field.Path) []string {
	if p.MaxRetryTimes == 0 {
		return nil
	}
	fit := p.RetriesWithinTimeout()
	switch {
	case p.RetryTimeout < p.MinRetryDuration:
		return []string{fmt.Sprintf("%s: retryTimeout %s is shorter than minRetryDuration %s: no retry can run",
			fldPath, FormatDuration(p.RetryTimeout), FormatDuration(p.MinRetryDuration))}
	case fit < p.MaxRetryTimes:
		return []string{fmt.Sprintf("%s: only %d of %d retries fit in retryTimeout %s (retry %d starts %s after the first failure)",
			fldPath, fit, p.MaxRetryTimes, FormatDuration(p.RetryTimeout), fit+1, FormatDuration(roundForHumans(p.ScheduleAt(fit+1))))}
	}
	return nil
}

// largestDefaultMin is the largest minRetryDuration defaulting may fill in.
func (c Config) largestDefaultMin() time.Duration {
	schema, _ := ParseDuration(*SchemaDefaults.MinRetryDuration)
	return max(schema, c.LogDefaults.MinRetryDuration)
}

// largestDefaultMax is the largest maxRetryTimes defaulting may fill in.
func (c Config) largestDefaultMax() int64 {
	return max(*SchemaDefaults.MaxRetryTimes, c.LogDefaults.MaxRetryTimes)
}

// Effective returns the policy the reconciler enforces for a log backup: the policy the
// mutating webhook would have given it (FillLog: missing fields from the configured log
// defaults, and the CRD's snapshot defaults, held exactly, read as unset unless
// keepSchemaDefaults or c.ReplaceSchemaDefaults says otherwise). A Backup may never have
// met the webhook (created before it, or while it was down), and TiDB Operator's own
// status writes send the policy it decoded, so the API server fills the CRD's 300s / 2 /
// 30m into a Backup created without one at its first write by TiDB Operator: the
// reconciler must read those values as the webhook does. A malformed policy returns its
// validation errors and no policy.
func (c Config) Effective(f Fields, keepSchemaDefaults bool, fldPath *field.Path) (Policy, field.ErrorList) {
	filled := c.FillLog(f, keepSchemaDefaults, fldPath).Result
	if errs, _ := c.ValidatePolicy(filled, fldPath); len(errs) > 0 {
		return Policy{}, errs
	}
	minD, _ := ParseDuration(*filled.MinRetryDuration)
	timeout, _ := ParseDuration(*filled.RetryTimeout)
	return Policy{MinRetryDuration: minD, MaxRetryTimes: *filled.MaxRetryTimes, RetryTimeout: timeout}, nil
}

// Validate checks the configured defaults with the same rules as any policy, so a server
// never starts with defaults it would reject on an object.
func (c Config) Validate(fldPath *field.Path) field.ErrorList {
	errs, _ := c.ValidatePolicy(c.LogDefaults.Fields(), fldPath)
	return errs
}

// roundForHumans keeps a duration in a message short: whole seconds from a minute up,
// whole milliseconds from a second up.
func roundForHumans(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(time.Millisecond)
	}
	return d
}
