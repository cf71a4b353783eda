package webhook

import (
	"context"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var (
	backupTemplatePolicyPath    = field.NewPath("spec", "backupTemplate", "backoffRetryPolicy")
	logBackupTemplatePolicyPath = field.NewPath("spec", "logBackupTemplate", "backoffRetryPolicy")
)

const logBackupTemplatePolicyPointer = "/spec/logBackupTemplate/backoffRetryPolicy"

// mutateSchedule fills the retry policy of a BackupSchedule's logBackupTemplate on CREATE.
// TiDB Operator copies that template as is into the log Backup it creates, so defaulting
// the template is what gives scheduled log backups the log policy. The snapshot
// backupTemplate is never changed.
func (s *Webhooks) mutateSchedule(_ context.Context, req *request[scheduleView]) (*admissionv1.AdmissionResponse, error) {
	if req.Operation != admissionv1.Create {
		return allowed(nil), nil
	}
	if err := expectKind(req.Kind, kindBackupSchedule); err != nil {
		return nil, err
	}
	if req.Object == nil {
		return nil, errNoObject
	}
	obj := req.Object
	tmpl := obj.Spec.LogBackupTemplate
	if tmpl == nil {
		return allowed(nil), nil
	}
	return patched(fillPolicy(s.Config, tmpl.BackoffRetryPolicy, logBackupTemplatePolicyPointer, logBackupTemplatePolicyPath, obj.Metadata.keepSchemaDefaults()))
}

// validateSchedule checks the policies of both Backup templates.
func (s *Webhooks) validateSchedule(_ context.Context, req *request[scheduleView]) (*admissionv1.AdmissionResponse, error) {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return allowed(nil), nil
	}
	if err := expectKind(req.Kind, kindBackupSchedule); err != nil {
		return nil, err
	}
	if req.Object == nil {
		return nil, errNoObject
	}
	obj, oldObj := req.Object, &scheduleView{}
	isUpdate := req.Operation == admissionv1.Update
	if isUpdate {
		if req.OldObject == nil {
			return nil, errNoOldObject
		}
		oldObj = req.OldObject
	}
	var errs field.ErrorList
	var warnings []string
	for _, t := range []struct {
		cur, old *backupSpecView
		path     *field.Path
	}{
		{obj.Spec.BackupTemplate, oldObj.Spec.BackupTemplate, backupTemplatePolicyPath},
		{obj.Spec.LogBackupTemplate, oldObj.Spec.LogBackupTemplate, logBackupTemplatePolicyPath},
	} {
		if t.cur == nil {
			continue
		}
		var old *any
		if isUpdate {
			var prev any // a template added by this update compares against "absent"
			if t.old != nil {
				prev = t.old.BackoffRetryPolicy
			}
			old = &prev
		}
		e, w := checkPolicy(s.Config, t.cur.BackoffRetryPolicy, old, t.path)
		errs, warnings = append(errs, e...), append(warnings, w...)
	}
	if len(errs) > 0 {
		return deny(kindBackupSchedule, objectName(req.Name, obj.Metadata), errs, warnings), nil
	}
	return allowed(warnings), nil
}
