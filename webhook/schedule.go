package webhook

import (
	"context"
	"fmt"
	"slices"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
)

var (
	specPath                    = field.NewPath("spec")
	backupTemplatePolicyPath    = specPath.Child("backupTemplate", "backoffRetryPolicy")
	logBackupTemplatePolicyPath = specPath.Child("logBackupTemplate", "backoffRetryPolicy")
	logBackupTemplateModePath   = specPath.Child("logBackupTemplate", "backupMode")
)

const (
	logBackupTemplatePolicyPointer = "/spec/logBackupTemplate/backoffRetryPolicy"
	logBackupTemplateModePointer   = "/spec/logBackupTemplate/backupMode"
)

// mutateSchedule fills the backupMode and the retry policy of a BackupSchedule's
// logBackupTemplate on CREATE. TiDB Operator copies that template as is into the log
// Backup it creates, so defaulting the template is what makes scheduled log backups log
// backups (defaults.FillLogTemplateMode) with the log policy. The snapshot backupTemplate
// is never changed.
func (s *Webhooks) mutateSchedule(_ context.Context, req *request[scheduleView]) (admission.Response, error) {
	if req.Operation != admissionv1.Create {
		return allowed(nil), nil
	}
	obj, err := objectOf(req, kindBackupSchedule)
	if err != nil {
		return admission.Response{}, err
	}
	tmpl := obj.Spec.LogBackupTemplate
	if tmpl == nil {
		return allowed(nil), nil
	}
	keep := obj.Metadata.keepSchemaDefaults()
	cfg := s.config(req.Namespace)
	var ops []jsonpatch.Operation
	var warnings []string
	if mode, warning := cfg.FillLogTemplateMode(tmpl.BackupMode, keep, logBackupTemplateModePath); mode != "" {
		// "add" sets an object member whether or not it exists (RFC 6902 4.1).
		ops, warnings = append(ops, jsonpatch.Operation{Operation: "add", Path: logBackupTemplateModePointer, Value: mode}), append(warnings, warning)
	}
	policyOps, policyWarnings := fillPolicy(cfg, tmpl.BackoffRetryPolicy, logBackupTemplatePolicyPointer, logBackupTemplatePolicyPath, keep)
	return patched(append(ops, policyOps...), append(warnings, policyWarnings...)), nil
}

// validateSchedule checks the policies of both Backup templates.
func (s *Webhooks) validateSchedule(_ context.Context, req *request[scheduleView]) (admission.Response, error) {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return allowed(nil), nil
	}
	obj, err := objectOf(req, kindBackupSchedule)
	if err != nil {
		return admission.Response{}, err
	}
	oldObj := &scheduleView{}
	isUpdate := req.Operation == admissionv1.Update
	if isUpdate {
		if req.OldObject == nil {
			return admission.Response{}, errNoOldObject
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
		e, w := checkPolicy(s.config(req.Namespace), t.cur.BackoffRetryPolicy, old, t.path)
		errs, warnings = append(errs, e...), append(warnings, w...)
	}
	e, w := checkTemplateModes(obj, oldObj, isUpdate)
	errs, warnings = append(errs, e...), append(warnings, w...)
	if err := obj.retentionError(); err != nil {
		switch {
		case obj.Metadata.keepSchemaDefaults():
			warnings = append(warnings, err.Error()+" (allowed: the object carries "+defaults.KeepSchemaDefaultsAnnotation+")")
		case isUpdate && oldObj.retentionError() != nil:
			// As for a bad policy: a schedule from before the webhook stays writable.
			warnings = append(warnings, err.Error()+" (kept because this update does not introduce it)")
		default:
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return deny(kindBackupSchedule, objectName(req.Name, obj.Metadata), errs, warnings), nil
	}
	return allowed(warnings), nil
}

// checkTemplateModes checks the templates' backupMode. As for the policy, an UPDATE is
// rejected only if it changes a mode to an invalid one: an old schedule with a wrong mode
// stays writable (TiDB Operator writes its status), with a warning.
func checkTemplateModes(obj, oldObj *scheduleView, isUpdate bool) (field.ErrorList, []string) {
	mode := func(t *backupSpecView) *string {
		if t == nil {
			return nil
		}
		return &t.BackupMode
	}
	errs := defaults.ValidateTemplateModes(mode(obj.Spec.BackupTemplate), mode(obj.Spec.LogBackupTemplate), specPath)
	if !isUpdate || len(errs) == 0 {
		return errs, nil
	}
	oldErrs := defaults.ValidateTemplateModes(mode(oldObj.Spec.BackupTemplate), mode(oldObj.Spec.LogBackupTemplate), specPath)
	var changed field.ErrorList
	var kept []string
	for _, e := range errs {
		if slices.ContainsFunc(oldErrs, func(o *field.Error) bool { return o.Field == e.Field && o.BadValue == e.BadValue }) {
			kept = append(kept, fmt.Sprintf("%s: invalid value %q kept because this update does not change it", e.Field, e.BadValue))
			continue
		}
		changed = append(changed, e)
	}
	return changed, kept
}
