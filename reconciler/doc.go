// Package reconciler is the controller that enforces the retry policy of TiDB Operator
// log backups: it reads Backups and their Jobs, asks the rules (package retry) what to
// do, and carries the decision out.
//
// The parts, and the one rule each keeps:
//
//   - reconciler.go: a cached phase, then a fresh phase. Decide on the cache; most
//     reconciles end there (nothing to do, or a wait). Before acting, decide again on a
//     fresh read from the API server and write once with the resourceVersion that was
//     read; on a conflict read and decide again. A new record skips the fresh read: its
//     merge patch carries the cached resourceVersion (recordOnCached). Rule: only an
//     object read fresh is ever written. DecideNow is the fresh phase without the write,
//     for explain.
//   - cache.go strips what the cache holds to what decisions read (that is why the rule
//     above matters; CacheOptions); guard.go suspends writes to a Backup written too
//     often (a loop's last line of defence); shadow.go reports decisions instead of
//     carrying them out; metrics.go counts what was written; resume.go finds whether TiDB
//     Operator can run log-resume; schedules.go warns about BackupSchedules whose
//     clean-up deletes their own log backup.
//   - kernel/ reads log backup tasks from PD's etcd (the optional kernel probe), so that a
//     failed log-start whose task runs is recovered rather than re-run, and a pause is seen
//     with BR's own error.
//   - explain/ answers, for a person, what the rules answer, through DecideNow.
package reconciler
