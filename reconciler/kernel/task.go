package kernel

import (
	"fmt"
	"strings"
	"time"
)

// keyPrefix is where BR keeps log backup tasks in PD's etcd.
const keyPrefix = "/tidb/br-stream"

// InfoKey is the key of a task's StreamBackupTaskInfo.
func InfoKey(task string) string { return keyPrefix + "/info/" + task }

// PauseKey is the key that exists while a task is paused.
func PauseKey(task string) string { return keyPrefix + "/pause/" + task }

// LastErrorPrefix is the prefix of a task's per-store errors. The trailing slash keeps
// task "a" from matching the errors of task "ab".
func LastErrorPrefix(task string) string { return keyPrefix + "/last-error/" + task + "/" }

// CheckpointPrefix is the prefix of a task's checkpoints: central_global (the advancer's
// global checkpoint), store/<id>, region/<id>/<version>, and, from old versions, an
// 8-byte store id. Values are 8-byte big-endian TSOs.
func CheckpointPrefix(task string) string { return keyPrefix + "/checkpoint/" + task + "/" }

// StorageCheckpointPrefix is the prefix of the checkpoints TiKV stores report as flushed to
// the backup storage (8-byte big-endian TSOs).
func StorageCheckpointPrefix(task string) string {
	return keyPrefix + "/storage-checkpoint/" + task + "/"
}

// pdClusterIDKey holds PD's cluster ID (8 bytes, big-endian); PD keeps its own state under
// /pd/<cluster id>/.
const pdClusterIDKey = "/pd/cluster_id"

// GCSafePointKey is where PD keeps the cluster's GC safe point (a hexadecimal string):
// /pd/<cluster id>/gc/safe_point (tikv/pd, keypath.GCSafePointPath).
func GCSafePointKey(clusterID uint64) string {
	return fmt.Sprintf("/pd/%d/gc/safe_point", clusterID)
}

// Task is what the cluster records about one log backup task.
type Task struct {
	Name string
	// Exists: the info key is present.
	Exists bool
	// StartTS is the TSO the task backs up from (StreamBackupTaskInfo field 2); a
	// successful log-start reports it as status.commitTs.
	StartTS uint64
	// Paused: the pause key is present.
	Paused bool
	// PausedByError: the pause record's severity is ERROR (TiKV or the advancer paused the
	// task on a fatal error); otherwise the pause was an operator's.
	PausedByError bool
	// PauseMessage is the pause record's payload: an error code and message, or text.
	PauseMessage string
	// LastErrors are the errors stores reported, ordered by store ID.
	LastErrors []StoreError
	// CheckpointTS is the task's global checkpoint, computed as BR computes it before a
	// resume (0: the task does not exist).
	CheckpointTS uint64
	// GCSafePoint is PD's GC safe point (0: not known). A resume is refused once it
	// reaches CheckpointTS: the changes in between may have been collected.
	GCSafePoint uint64
}

// GCPassedCheckpoint reports a task whose resume can no longer be loss-free: the GC safe
// point has reached its checkpoint. BR's log resume refuses exactly this case
// (br/pkg/task/stream.go, RunStreamResume: utils.CheckGCSafePoint(ctx, pdClient,
// globalCheckPointTS) fails with ErrBackupGCSafepointExceeded when ts <= safePoint).
func (t *Task) GCPassedCheckpoint() bool {
	return t.Exists && t.CheckpointTS > 0 && t.GCSafePoint > 0 && t.CheckpointTS <= t.GCSafePoint
}

// StoreError is one brpb.StreamBackupError.
type StoreError struct {
	StoreID  uint64
	Code     string
	Message  string
	HappenAt time.Time // zero when not reported
}

func (e StoreError) String() string {
	s := fmt.Sprintf("store %d", e.StoreID)
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// ErrorMessage is the cluster's account of why the task stopped: the pause payload, then
// each store's last error. Empty when the cluster reports none.
func (t *Task) ErrorMessage() string {
	var parts []string
	if t.PauseMessage != "" {
		parts = append(parts, t.PauseMessage)
	}
	for _, e := range t.LastErrors {
		if e.String() != t.PauseMessage { // the pause usually carries a store's error
			parts = append(parts, e.String())
		}
	}
	return strings.Join(parts, "; ")
}

// Summary describes the task in a few words, for records and Events.
func (t *Task) Summary() string {
	switch {
	case !t.Exists:
		return fmt.Sprintf("task %s does not exist", t.Name)
	case t.PausedByError:
		return fmt.Sprintf("task %s (start ts %d) is paused by an error", t.Name, t.StartTS)
	case t.Paused:
		return fmt.Sprintf("task %s (start ts %d) exists, paused by an operator", t.Name, t.StartTS)
	}
	return fmt.Sprintf("task %s (start ts %d) exists and runs", t.Name, t.StartTS)
}
