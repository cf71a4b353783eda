package defaults

import "k8s.io/apimachinery/pkg/util/validation/field"

// MaxBackupsDeletesLogBackup is why a BackupSchedule with a logBackupTemplate and maxBackups
// but no maxReservedTime is refused (ValidateScheduleRetention).
const MaxBackupsDeletesLogBackup = "with a logBackupTemplate and no maxReservedTime, TiDB Operator's maxBackups clean-up " +
	"deletes the schedule's log backup and so stops its PITR log stream (tidb-operator#6320): set maxReservedTime " +
	"instead, which keeps the log backup and truncates its logs"

// ValidateScheduleRetention checks a BackupSchedule's clean-up against its log backup.
//
// TiDB Operator (v1.6.6, backupGCByMaxBackups) lists every Backup that carries the
// schedule's labels, the log Backup log-<schedule> included, sorts them newest first and
// deletes all beyond maxBackups. The log Backup was made at the first tick, so it is
// among the oldest, and once maxBackups snapshots exist it is deleted; its cleaner then
// runs log-stop. maxReservedTime takes the other path (it keeps the log Backup and
// truncates it) and wins whenever it is set, whatever its value, so only maxBackups > 0
// without it is refused. maxBackups is a pointer: nil means absent.
func ValidateScheduleRetention(hasLogTemplate bool, maxBackups *int64, hasMaxReservedTime bool, spec *field.Path) *field.Error {
	if !hasLogTemplate || maxBackups == nil || *maxBackups <= 0 || hasMaxReservedTime {
		return nil
	}
	return field.Forbidden(spec.Child("maxBackups"), MaxBackupsDeletesLogBackup)
}

// ScheduleRetentionOf is ValidateScheduleRetention for a BackupSchedule read as
// unstructured content (the tools and the reconciler): its spec's logBackupTemplate,
// maxBackups and maxReservedTime. A maxBackups that is not an integer is left to the API
// server's schema, which refuses it.
func ScheduleRetentionOf(object map[string]any) *field.Error {
	spec, _ := object["spec"].(map[string]any)
	_, hasLogTemplate := spec["logBackupTemplate"].(map[string]any)
	var maxBackups *int64
	if n, ok := spec["maxBackups"].(int64); ok {
		maxBackups = &n
	}
	_, hasMaxReservedTime := spec["maxReservedTime"]
	return ValidateScheduleRetention(hasLogTemplate, maxBackups, hasMaxReservedTime && spec["maxReservedTime"] != nil, field.NewPath("spec"))
}
