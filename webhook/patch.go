package webhook

import (
	"fmt"
	"reflect"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
)

// fillPolicy returns the patch that gives the log-backup policy found at ptr (a JSON
// pointer; fldPath is the same place as a field path) its defaults, and the warnings to
// return. A malformed policy gets no patch: the validating webhook reports it.
func fillPolicy(cfg defaults.Config, policy any, ptr string, fldPath *field.Path, keep bool) ([]jsonpatch.Operation, []string) {
	cur, errs := defaults.ReadFields(policy, fldPath)
	if len(errs) > 0 {
		return nil, nil
	}
	d := cfg.FillLog(cur, keep, fldPath)
	if !d.Changed() {
		return nil, d.Warnings
	}
	if _, isObject := policy.(map[string]any); !isObject {
		// Absent or null: add the whole policy object.
		return []jsonpatch.Operation{{Operation: "add", Path: ptr, Value: d.Result.Map()}}, d.Warnings
	}
	ops := make([]jsonpatch.Operation, 0, len(d.Set)+len(d.Replaced))
	for _, f := range d.Set {
		ops = append(ops, jsonpatch.Operation{Operation: "add", Path: ptr + "/" + f, Value: d.Result.Value(f)})
	}
	for _, f := range d.Replaced {
		ops = append(ops, jsonpatch.Operation{Operation: "replace", Path: ptr + "/" + f, Value: d.Result.Value(f)})
	}
	return ops, d.Warnings
}

// patched allows the request with the given operations (none: no patch at all);
// controller-runtime encodes them.
func patched(ops []jsonpatch.Operation, warnings []string) admission.Response {
	return admission.Patched("", ops...).WithWarnings(warnings...)
}

// checkPolicy validates one policy. On UPDATE (old != nil) a policy that the update does
// not change is never rejected: TiDB Operator writes status through the main resource,
// and an object created before this webhook must stay writable. Its problems become
// warnings instead.
func checkPolicy(cfg defaults.Config, policy any, old *any, fldPath *field.Path) (field.ErrorList, []string) {
	cur, errs := defaults.ReadFields(policy, fldPath)
	var warnings []string
	if len(errs) == 0 {
		errs, warnings = cfg.ValidatePolicy(cur, fldPath)
	}
	if old == nil || !reflect.DeepEqual(*old, policy) {
		return errs, warnings
	}
	if len(errs) == 0 {
		return nil, nil // unchanged and valid: nothing new to say on every status write
	}
	kept := make([]string, 0, len(errs))
	for _, e := range errs {
		kept = append(kept, fmt.Sprintf("%s: invalid value %s kept because this update does not change it",
			e.Field, defaults.Truncate(fmt.Sprintf("%#v", e.BadValue), 24)))
	}
	return nil, kept
}

// deny rejects a request with Kubernetes' usual "is invalid" status, field causes included.
func deny(kind, name string, errs field.ErrorList, warnings []string) admission.Response {
	status := apierrors.NewInvalid(schema.GroupKind{Group: group, Kind: kind}, name, errs).ErrStatus
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &status, Warnings: warnings}}
}
