package webhook

import (
	"context"
	"errors"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

var backupPolicyPath = field.NewPath("spec", "backoffRetryPolicy")

const backupPolicyPointer = "/spec/backoffRetryPolicy"

// mutateBackup fills the retry policy of log Backups on CREATE. Snapshot and
// volume-snapshot Backups, and every other operation, pass unchanged.
func (s *Webhooks) mutateBackup(_ context.Context, req *request[backupView]) (admission.Response, error) {
	if req.Operation != admissionv1.Create {
		return allowed(nil), nil
	}
	obj, err := objectOf(req, kindBackup)
	if err != nil {
		return admission.Response{}, err
	}
	if obj.Spec.BackupMode != backupModeLog {
		return allowed(nil), nil
	}
	return patched(fillPolicy(s.config(req.Namespace), obj.Spec.BackoffRetryPolicy, backupPolicyPointer, backupPolicyPath, obj.Metadata.keepSchemaDefaults())), nil
}

// validateBackup checks the retry policy of every Backup, whatever its mode: TiDB
// Operator's snapshot retries read the same fields and fail the same way on a typo.
func (s *Webhooks) validateBackup(_ context.Context, req *request[backupView]) (admission.Response, error) {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return allowed(nil), nil
	}
	obj, err := objectOf(req, kindBackup)
	if err != nil {
		return admission.Response{}, err
	}
	var old *any
	if req.Operation == admissionv1.Update {
		if req.OldObject == nil {
			return admission.Response{}, errNoOldObject
		}
		old = &req.OldObject.Spec.BackoffRetryPolicy
	}
	errs, warnings := checkPolicy(s.config(req.Namespace), obj.Spec.BackoffRetryPolicy, old, backupPolicyPath)
	if len(errs) > 0 {
		return deny(kindBackup, objectName(req.Name, obj.Metadata), errs, warnings), nil
	}
	return allowed(warnings), nil
}

// objectName names the object in a denial; generated names may only be in the object.
func objectName(reqName string, meta objectMeta) string {
	if reqName != "" {
		return reqName
	}
	return meta.Name
}

var (
	errNoObject    = errors.New("request has no object")
	errNoOldObject = errors.New("request has no oldObject")
)
