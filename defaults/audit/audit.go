package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
)

// FieldManager owns the policy fields Fix writes (server-side apply).
const FieldManager = "tidb-backup-guard-audit"

// Problems Audit reports.
const (
	ProblemMissing        = "missing-policy"
	ProblemSchemaDefaults = "schema-defaults"
	ProblemMalformed      = "malformed"
	// ProblemDeletesLogBackup: a BackupSchedule whose maxBackups clean-up deletes its own
	// log backup (defaults.ValidateScheduleRetention, tidb-operator#6320).
	ProblemDeletesLogBackup = "deletes-log-backup"
)

// Finding is one policy Audit reports.
type Finding struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Path is the policy's field path.
	Path    string `json:"path"`
	Problem string `json:"problem"`
	Detail  string `json:"detail"`
	// Fix is the policy --fix applies ("" for problems it cannot fix).
	Fix string `json:"fix,omitempty"`
	// Result, with --fix, is what happened: fixed, would fix (--dry-run), not fixable, or
	// the error.
	Result string `json:"result,omitempty"`

	apply           defaults.Fields
	resourceVersion string
	pathParts       []string
}

// Audit finds the problem policies in a namespace ("" for all), judged with the
// configuration each namespace has (policies).
func Audit(ctx context.Context, c client.Reader, namespace string, policies defaults.Resolver) ([]Finding, error) {
	var out []Finding
	for _, gvk := range []schema.GroupVersionKind{defaults.BackupGVK, defaults.BackupScheduleGVK} {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
			return nil, fmt.Errorf("list %ss: %w", gvk.Kind, err)
		}
		for i := range list.Items {
			u := &list.Items[i]
			if u.GetDeletionTimestamp() != nil {
				continue
			}
			out = append(out, auditObject(u, gvk.Kind, policies.For(u.GetNamespace()))...)
		}
	}
	return out, nil
}

// auditObject checks the policies of one object: every policy for malformed values (the
// validating webhook's rule, any mode), and the log backup's (a log Backup's, a
// schedule's logBackupTemplate) for what the mutating webhook would fill or replace,
// unless the object carries the opt-out annotation.
func auditObject(u *unstructured.Unstructured, kind string, cfg defaults.Config) []Finding {
	keep := u.GetAnnotations()[defaults.KeepSchemaDefaultsAnnotation] == "true"
	type policyAt struct {
		path []string
		log  bool
	}
	var at []policyAt
	if kind == defaults.BackupGVK.Kind {
		mode, _, _ := unstructured.NestedString(u.Object, "spec", "backupMode")
		at = append(at, policyAt{[]string{"spec", defaults.FieldPolicy}, mode == defaults.BackupModeLog})
	} else {
		for _, t := range []string{"backupTemplate", "logBackupTemplate"} {
			if _, found, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", t); found {
				at = append(at, policyAt{[]string{"spec", t, defaults.FieldPolicy}, t == "logBackupTemplate"})
			}
		}
	}
	var out []Finding
	if kind == defaults.BackupScheduleGVK.Kind && !keep {
		if err := defaults.ScheduleRetentionOf(u.Object); err != nil {
			out = append(out, Finding{Kind: kind, Namespace: u.GetNamespace(), Name: u.GetName(), Path: err.Field,
				Problem: ProblemDeletesLogBackup, Detail: err.Detail})
		}
	}
	for _, p := range at {
		path := field.NewPath(p.path[0], p.path[1:]...)
		f := Finding{Kind: kind, Namespace: u.GetNamespace(), Name: u.GetName(), Path: path.String(),
			resourceVersion: u.GetResourceVersion(), pathParts: p.path}
		raw, _, _ := unstructured.NestedFieldNoCopy(u.Object, p.path...)
		fields, errs := defaults.ReadFields(raw, path)
		if len(errs) == 0 {
			errs, _ = cfg.ValidatePolicy(fields, path)
		}
		switch {
		case len(errs) > 0:
			f.Problem, f.Detail = ProblemMalformed, errs.ToAggregate().Error()
		case !p.log || keep:
			continue
		default:
			d := cfg.FillLog(fields, false, path)
			switch {
			case len(d.Replaced) > 0:
				f.Problem = ProblemSchemaDefaults
				f.Detail = fmt.Sprintf("holds the CRD's snapshot defaults %s, not the log defaults", describe(fields))
			case len(d.Set) == 3:
				f.Problem, f.Detail = ProblemMissing, "no policy: a log backup that fails is not retried as intended"
			case len(d.Set) > 0:
				f.Problem, f.Detail = ProblemMissing, "missing "+strings.Join(d.Set, ", ")
			default:
				continue
			}
			f.apply, f.Fix = d.Result, describe(d.Result)
		}
		out = append(out, f)
	}
	return out
}

// describe writes a policy as "30s / 5 / 30m", "-" for an absent field.
func describe(f defaults.Fields) string {
	parts := make([]string, 0, 3)
	for _, name := range defaults.PolicyFields {
		if v := f.Value(name); v != nil {
			parts = append(parts, fmt.Sprint(v))
		} else {
			parts = append(parts, "-")
		}
	}
	return strings.Join(parts, " / ")
}

// Fix applies a finding's fix with server-side apply: an apply configuration holding only
// the policy's three fields and the resourceVersion that was audited, so a changed object
// is never fixed on stale grounds (the API server answers Conflict; audit again). Fields
// other managers own keep their values; ownership of the three fields moves to
// FieldManager (forced: the schema default was written under the creator's name).
// It reports whether the finding is dealt with.
func Fix(ctx context.Context, c client.Client, f *Finding, dryRun bool) bool {
	if f.Fix == "" {
		f.Result = "not fixable: edit the policy"
		if f.Problem == ProblemDeletesLogBackup {
			f.Result = "not fixable: set spec.maxReservedTime (how long to keep backups is yours to choose)"
		}
		return false
	}
	gvk := defaults.BackupGVK
	if f.Kind == defaults.BackupScheduleGVK.Kind {
		gvk = defaults.BackupScheduleGVK
	}
	ac := &unstructured.Unstructured{}
	ac.SetGroupVersionKind(gvk)
	ac.SetNamespace(f.Namespace)
	ac.SetName(f.Name)
	ac.SetResourceVersion(f.resourceVersion)
	policy := map[string]any{}
	for _, name := range defaults.PolicyFields {
		policy[name] = f.apply.Value(name)
	}
	if err := unstructured.SetNestedField(ac.Object, policy, f.pathParts...); err != nil {
		f.Result = "failed: " + err.Error()
		return false
	}
	opts := []client.ApplyOption{client.FieldOwner(FieldManager), client.ForceOwnership}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(ac), opts...)
	switch {
	case apierrors.IsConflict(err):
		f.Result = "not fixed: the object changed since it was read; run audit again"
		return false
	case err != nil:
		f.Result = "failed: " + err.Error()
		return false
	case dryRun:
		f.Result = "would fix"
		return true
	}
	f.Result = "fixed"
	return true
}

// Write prints findings as a table (with their results when fix), or as JSON.
func Write(w io.Writer, findings []Finding, fix bool, output string) error {
	if output == "json" {
		if findings == nil {
			findings = []Finding{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(findings)
	}
	if len(findings) == 0 {
		_, err := fmt.Fprintln(w, "No problems found.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "KIND\tNAMESPACE\tNAME\tPATH\tPROBLEM\tFIX\tDETAIL"
	if fix {
		header += "\tRESULT"
	}
	fmt.Fprintln(tw, header)
	for _, f := range findings {
		fixTo := f.Fix
		if fixTo == "" {
			fixTo = "-"
		}
		line := strings.Join([]string{f.Kind, f.Namespace, f.Name, f.Path, f.Problem, fixTo, f.Detail}, "\t")
		if fix {
			line += "\t" + f.Result
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}
