// Package reconciler enforces the retry policy of TiDB Operator log backups.
//
// TiDB Operator never retries a failed log backup command. This reconciler watches log
// Backups and their Jobs and, for the command TiDB Operator considers current:
//
//   - detects a failed attempt, both ways it happens: the command's entry in
//     status.logSubCommandStatuses says Failed (BR reported an error), or the command's
//     Job failed while the entry still says Scheduled/Prepare/Running (the pod died and
//     nobody wrote the Backup);
//   - records it in status.backoffRetryStatus (one record per failed attempt) and waits
//     the exponential backoff of spec.backoffRetryPolicy (package defaults);
//   - when the retry is due, deletes the old Job (foreground) and waits until it and its
//     pods are gone, then sets the entry's phase to RetryFailed, TiDB Operator's
//     retryable phase, so that TiDB Operator creates a new Job;
//   - gives up, marking the command Failed with a reason naming the limit, once
//     maxRetryTimes or retryTimeout is spent, or when retrying cannot help;
//   - optionally (Reconciler.Kernel, package kernel) reads the log backup task from PD's
//     etcd just before a retry: a failed log-start whose task the cluster holds is
//     recovered instead of re-run, and a task paused by an error lends its message to
//     the record.
//
// The retry budget counts the failures of one "episode": consecutive failures of a
// command since it last succeeded. The open episode is persisted in an annotation this
// project owns (EpisodeAnnotation), so a restart or a second replica derives the same
// state from the object alone.
//
// Structure: observe.go reads a Backup into a read-only view (the object itself is kept
// raw: this project does not own the schema), decide.go is a pure function from what was
// observed and the time to a Decision, write.go applies a Decision to the raw object
// (owned fields only), and reconciler.go wires it: decide on cached data, re-observe from
// the API server before acting, write once with the object's resourceVersion, and on a
// conflict re-read and decide again. A new failure record skips the re-read of the Backup:
// it is a merge patch whose resourceVersion precondition does the same job
// (recordOnCached).
package reconciler
