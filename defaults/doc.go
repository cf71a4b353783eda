// Package defaults is the one place that knows the retry policy of log backups.
//
// A TiDB Operator Backup carries spec.backoffRetryPolicy with three fields:
// minRetryDuration and retryTimeout (Go duration strings) and maxRetryTimes (an
// integer). The mutating webhook fills it, the validating webhook checks it and the
// reconciler enforces it; all three call into this package, so they can never disagree
// about what a policy means.
//
// The package knows nothing about HTTP, admission or controllers: plain values in, plain
// values or a field.ErrorList out. Policies are read from decoded JSON (map[string]any)
// because the callers work on raw objects they do not own; see ReadFields.
package defaults
