// Package reconciler enforces the retry policy of TiDB Operator log backups.
//
// TiDB Operator never retries a failed log backup command, and never resumes a log backup
// that TiKV paused on an error. For the command TiDB Operator considers current (derived
// as it derives it: deriveCommand), this package:
//
//   - detects a failed attempt, both ways it happens: the command's entry says Failed (BR
//     reported an error), or its Job failed while the entry still says
//     Scheduled/Prepare/Running (the pod died and nobody wrote the Backup);
//   - records it in status.backoffRetryStatus and waits the exponential backoff of
//     spec.backoffRetryPolicy (package defaults);
//   - when due, deletes the old Job and waits until it and its pods are gone, then hands
//     the command back: the entry's phase RetryFailed, TiDB Operator's retryable phase;
//   - gives up, marking the command Failed with a reason naming the limit, once
//     maxRetryTimes or retryTimeout is spent, or when retrying cannot help.
//
// The parts, and the one rule each keeps:
//
//   - observe.go reads a Backup into a read-only view; the object stays raw, because this
//     project does not own the schema. Rule: nothing read is ever written back whole.
//   - decide.go (commands) and pause.go (running log backups: error pauses, the resume
//     hand-off and why it converges, TiDB Operator's false verdicts put back) are Decide,
//     a pure function of the view, the Job and the time. Rule: deciding again on the
//     object its own write produced yields nothing to do (rest_test.go, the fuzz target).
//   - write.go applies a Decision to the raw object. Rule: owned fields only.
//   - reconciler.go wires it: decide on the cache, decide again on a fresh read, write once
//     with the resourceVersion that was read, and on a conflict read and decide again (a
//     new record skips the fresh read: its merge patch carries the cached resourceVersion).
//     Rule: only an object read fresh is ever written.
//   - cache.go strips what the cache holds to what decisions read (that is why the rule
//     above matters); guard.go suspends writes to a Backup written too often (a loop's last
//     line of defence); shadow.go reports decisions instead of carrying them out;
//     metrics.go counts what was written.
//   - explain.go answers, for a person, what Decide answers, through the same input and
//     the same Decide: the tool cannot describe a rule the reconciler does not follow.
//   - kernel/ reads log backup tasks from PD's etcd (the optional kernel probe), so that a
//     failed log-start whose task runs is recovered rather than re-run, and a pause is seen
//     with BR's own error.
//
// The retry budget counts the failures of one episode: consecutive failures of a command
// (or the pauses of a running log backup) since it last succeeded. The open episode lives
// in an annotation this project owns (EpisodeAnnotation), so a restart or a second replica
// derives the same state from the object alone.
package reconciler
