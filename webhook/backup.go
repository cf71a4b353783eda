package webhook

import (
	"context"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var backupPolicyPath = field.NewPath("spec", "backoffRetryPolicy")

const backupPolicyPointer = "/spec/backoffRetryPolicy"

// mutateBackup fills the retry policy of log Backups on CREATE. Snapshot and
// volume-snapshot Backups, and every other operation, pass unchanged.
func (s *Webhooks) mutateBackup(_ context.Context, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, error) {
	if req.Operation != admissionv1.Create {
		return allowed(nil), nil
	}
	if err := expectKind(req, kindBackup); err != nil {
		return nil, err
	}
	var obj backupView
	if err := decodeObject(req.Object, "object", &obj); err != nil {
		return nil, err
	}
	if obj.Spec.BackupMode != backupModeLog {
		return allowed(nil), nil
	}
	return patched(fillPolicy(s.Config, obj.Spec.BackoffRetryPolicy, backupPolicyPointer, backupPolicyPath, obj.Metadata.keepSchemaDefaults()))
}

// validateBackup checks the retry policy of every Backup, whatever its mode: TiDB
// Operator's snapshot retries read the same fields and fail the same way on a typo.
func (s *Webhooks) validateBackup(_ context.Context, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, error) {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return allowed(nil), nil
	}
	if err := expectKind(req, kindBackup); err != nil {
		return nil, err
	}
	var obj backupView
	if err := decodeObject(req.Object, "object", &obj); err != nil {
		return nil, err
	}
	var old *any
	if req.Operation == admissionv1.Update {
		var oldObj backupView
		if err := decodeObject(req.OldObject, "oldObject", &oldObj); err != nil {
			return nil, err
		}
		old = &oldObj.Spec.BackoffRetryPolicy
	}
	errs, warnings := checkPolicy(s.Config, obj.Spec.BackoffRetryPolicy, old, backupPolicyPath)
	if len(errs) > 0 {
		return deny(kindBackup, objectName(req, obj.Metadata), errs, warnings), nil
	}
	return allowed(warnings), nil
}

// objectName names the object in a denial; generated names may only be in the object.
func objectName(req *admissionv1.AdmissionRequest, meta objectMeta) string {
	if req.Name != "" {
		return req.Name
	}
	return meta.Name
}
