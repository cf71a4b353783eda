package webhook

import (
	"encoding/json"
	"errors"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "sigs.k8s.io/json"
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
	} `json:"spec"`
}

const (
	group   = "pingcap.com"
	version = "v1alpha1"

	kindBackup         = "Backup"
	kindBackupSchedule = "BackupSchedule"

	// backupModeLog is spec.backupMode of a log (PITR) backup.
	backupModeLog = "log"
)

// expectKind rejects a request for another kind: a webhook configuration that routes
// other objects here is a mistake worth surfacing, not something to guess about.
func expectKind(req *admissionv1.AdmissionRequest, kind string) error {
	if req.Kind.Group != group || req.Kind.Version != version || req.Kind.Kind != kind {
		return fmt.Errorf("this webhook admits %s/%s %s, got %q", group, version, kind, req.Kind.String())
	}
	return nil
}

// decodeObject reads a view from a request's object (or old object).
func decodeObject(raw runtime.RawExtension, what string, into any) error {
	if len(raw.Raw) == 0 || string(raw.Raw) == "null" {
		return fmt.Errorf("request has no %s", what)
	}
	// Case-sensitive, as the API server decodes: encoding/json would also match "speC" or
	// "backupmode", fields the API server treats as different (found by fuzzing).
	if err := utiljson.UnmarshalCaseSensitivePreserveInts(raw.Raw, into); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return fmt.Errorf("decode %s: %s: must be %s, got %s", what, typeErr.Field, typeErr.Type, typeErr.Value)
		}
		return fmt.Errorf("decode %s: %w", what, err)
	}
	return nil
}

// keepSchemaDefaults reports the object's opt-out annotation.
func (m objectMeta) keepSchemaDefaults() bool {
	return m.Annotations[defaultsKeepAnnotation] == "true"
}
