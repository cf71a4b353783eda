// Package retry holds the retry rules of TiDB Operator log backups: what a Backup's state
// means and what to write about it. It is pure: no client, no clock, no cache.
//
// TiDB Operator never retries a failed log backup command, and never resumes a log backup
// that TiKV paused on an error. For the command TiDB Operator considers current (derived
// as it derives it: DeriveCommand), the rules:
//
//   - detect a failed attempt, both ways it happens: the command's entry says Failed (BR
//     reported an error), or its Job failed while the entry still says
//     Scheduled/Prepare/Running (the pod died and nobody wrote the Backup);
//   - record it in status.backoffRetryStatus and wait the exponential backoff of
//     spec.backoffRetryPolicy (package defaults);
//   - when due, delete the old Job and wait until it and its pods are gone, then hand
//     the command back: the entry's phase RetryFailed, TiDB Operator's retryable phase;
//   - give up, marking the command Failed with a reason naming the limit, once
//     maxRetryTimes or retryTimeout is spent, or when retrying cannot help.
//
// The parts, and the one rule each keeps:
//
//   - observe.go reads a Backup into a read-only view (BackupView); the object stays raw,
//     because this project does not own the schema. Rule: nothing read is ever written
//     back whole.
//   - decide.go (commands) and pause.go (running log backups: error pauses, the resume
//     hand-off and why it converges, TiDB Operator's false verdicts put back) are Decide,
//     a pure function of the view, the Job and the time. Rule: deciding again on the
//     object its own write produced yields nothing to do (comes_to_rest_test.go, the fuzz
//     target). A decision to do nothing says why.
//   - write.go applies a Decision to the raw object (Apply, RecordPatch). Rule: owned
//     fields only. Apply and Decide live together so that the come-to-rest property is
//     the property of one package.
//
// The retry budget counts the failures of one episode: consecutive failures of a command
// (or the pauses of a running log backup) since it last succeeded. The open episode lives
// in an annotation this project owns (EpisodeAnnotation), so a restart or a second replica
// derives the same state from the object alone.
package retry
