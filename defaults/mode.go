package defaults

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Backup modes (spec.backupMode of a Backup and of a BackupSchedule's templates).
const (
	// BackupModeLog is a log (PITR) backup.
	BackupModeLog = "log"
	// SchemaDefaultBackupMode is what the CRDs fill into spec.backupMode, and into every
	// BackupSchedule template's, when it is absent: the API server writes it before any
	// webhook runs, exactly as it writes the policy's snapshot defaults.
	SchemaDefaultBackupMode = "snapshot"
)

// FillLogTemplateMode returns the backupMode a BackupSchedule's logBackupTemplate gets on
// create, and the warning that says so; "" means it stays as it is.
//
// TiDB Operator copies logBackupTemplate as it is into the Backup log-<schedule>, and the
// CRD defaults the template's backupMode to snapshot. A template left without
// backupMode: log (an easy omission, since the field's name already says "log") would make
// a snapshot Backup named log-<schedule>, and no point-in-time recovery. The API server
// wrote that snapshot, not the user, and a log template can only mean log, so it becomes
// log, under the same opt-outs as the policy's schema defaults. Any other value is the
// user's and is left for validation to reject.
func (c Config) FillLogTemplateMode(mode string, keepSchemaDefaults bool, fldPath *field.Path) (string, string) {
	if mode != "" && mode != SchemaDefaultBackupMode {
		return "", ""
	}
	if !c.ReplaceSchemaDefaults || keepSchemaDefaults {
		return "", ""
	}
	was := "absent"
	if mode != "" {
		was = fmt.Sprintf("%q (the CRD's default)", mode)
	}
	return BackupModeLog, fmt.Sprintf("%s: %s set to %q, since this template makes a log backup", fldPath, was, BackupModeLog)
}

// ValidateTemplateModes checks the backupMode of a BackupSchedule's templates: the log
// template must make a log backup, and the periodic snapshot template must not (every
// tick would start another log backup). A nil mode means the template is absent.
func ValidateTemplateModes(backupTemplate, logBackupTemplate *string, spec *field.Path) field.ErrorList {
	var errs field.ErrorList
	if m := logBackupTemplate; m != nil && *m != BackupModeLog {
		p := spec.Child("logBackupTemplate", "backupMode")
		if *m == "" {
			errs = append(errs, field.Required(p, "must be \"log\": TiDB Operator copies this template into the schedule's log backup"))
		} else {
			errs = append(errs, field.Invalid(p, *m, "must be \"log\": TiDB Operator copies this template into the schedule's log backup"))
		}
	}
	if m := backupTemplate; m != nil && *m == BackupModeLog {
		errs = append(errs, field.Invalid(spec.Child("backupTemplate", "backupMode"), *m,
			"must not be \"log\": this template is run on every tick; a log backup belongs in logBackupTemplate"))
	}
	return errs
}
