// Package kernel reads a log backup task as the TiDB cluster itself records it: in PD's
// embedded etcd, under /tidb/br-stream. A failed Job does not always mean a failed log
// backup: BR may have registered the task before its pod died, and a blind re-run of
// log-start then collides with it. The cluster's record (the "kernel" state) is the truth
// the reconciler consults before re-running a command.
//
// Keys, per task (the task is named after the Backup):
//
//	/tidb/br-stream/info/<task>              protobuf brpb.StreamBackupTaskInfo; exists while the task does
//	/tidb/br-stream/pause/<task>             exists while paused: empty (manual), or JSON naming a severity and payload
//	/tidb/br-stream/last-error/<task>/<id>   protobuf brpb.StreamBackupError, one per TiKV store
//
// decode.go reads those values by their protobuf field numbers (google.golang.org/protobuf's
// protowire), so the package does not link kvproto's generated code; its tests encode with
// kvproto to show the two agree. probe.go reaches PD, a manager.Runnable in three parts:
// pool.go (one etcd client per endpoint and TLS identity, shared by the Backups that use
// it and closed when the last of them goes), apimachinery's expiring cache (results
// reused briefly per task and attempt) and x/sync's singleflight (one probe per task however
// many Backups ask); probes run in the background, so a slow or unreachable PD never holds
// up a reconcile.
package kernel
