package webhook

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
)

// The few fields of a Backup or BackupSchedule this package reads. These are read-only
// views: nothing is ever encoded back from them, so the fields they leave out are not at
// risk (see the package doc).

type objectMeta struct {
	Name        string            `json:"name"`
	Annotations map[string]string `json:"annotations"`
}

// backupSpecView covers a Backup's spec and a BackupSchedule template alike.
type backupSpecView struct {
	BackupMode string `json:"backupMode"`
	// BackoffRetryPolicy is decoded generically so that wrong JSON types surface as field
	// errors (defaults.ReadFields) rather than as decode failures.
	BackoffRetryPolicy any `json:"backoffRetryPolicy"`
}

type backupView struct {
	Metadata objectMeta     `json:"metadata"`
	Spec     backupSpecView `json:"spec"`
}

type scheduleView struct {
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		BackupTemplate    *backupSpecView `json:"backupTemplate"`
		LogBackupTemplate *backupSpecView `json:"logBackupTemplate"`
		// The clean-up settings (defaults.ValidateScheduleRetention). The API server has
		// checked their types against the CRD before a validating webhook runs.
		MaxBackups      *int64  `json:"maxBackups"`
		MaxReservedTime *string `json:"maxReservedTime"`
	} `json:"spec"`
}

// retentionError is the schedule's clean-up problem, or nil.
func (s *scheduleView) retentionError() *field.Error {
	return defaults.ValidateScheduleRetention(s.Spec.LogBackupTemplate != nil, s.Spec.MaxBackups,
		s.Spec.MaxReservedTime != nil, specPath)
}

const (
	group   = "pingcap.com"
	version = "v1alpha1"

	kindBackup         = "Backup"
	kindBackupSchedule = "BackupSchedule"

	// backupModeLog is spec.backupMode of a log (PITR) backup.
	backupModeLog = "log"
)

// objectOf is the request's object, once its kind is the expected one: a request for
// another kind, or without an object, is an error.
func objectOf[V any](req *request[V], kind string) (*V, error) {
	if err := expectKind(req.Kind, kind); err != nil {
		return nil, err
	}
	if req.Object == nil {
		return nil, errNoObject
	}
	return req.Object, nil
}

// expectKind rejects a request for another kind: a webhook configuration that routes
// other objects here is a mistake worth surfacing, not something to guess about.
func expectKind(gvk metav1.GroupVersionKind, kind string) error {
	if gvk.Group != group || gvk.Version != version || gvk.Kind != kind {
		return fmt.Errorf("this webhook admits %s/%s %s, got %q", group, version, kind, gvk.String())
	}
	return nil
}

// keepSchemaDefaults reports the object's opt-out annotation.
func (m objectMeta) keepSchemaDefaults() bool {
	return m.Annotations[defaults.KeepSchemaDefaultsAnnotation] == "true"
}
