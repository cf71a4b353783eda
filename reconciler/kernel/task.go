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
		parts = append(parts, e.String())
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
