package admissionpolicy

import (
	"fmt"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
)

// Options name and place the rendered objects.
type Options struct {
	// Prefix starts every object's name ("tidb-backup-guard").
	Prefix string
	// ParamsNamespace holds the params ConfigMap (the server's namespace).
	ParamsNamespace string
	// NamespaceSelector selects the namespaces the bindings apply in (the webhooks').
	NamespaceSelector *metav1.LabelSelector
	// Labels are put on every object.
	Labels map[string]string
}

// Names of the objects, from the prefix.
func (o Options) paramsName() string      { return o.Prefix + "-admission-params" }
func (o Options) name(what string) string { return o.Prefix + "-" + what }
func (o Options) meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Labels: o.Labels}
}

// Render returns the objects of the CEL mode: the params ConfigMap holding cfg, two
// MutatingAdmissionPolicies (Backup, BackupSchedule) and two ValidatingAdmissionPolicies,
// each with its binding, in the order they must be created.
func Render(cfg defaults.Config, o Options) []runtime.Object {
	params := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: o.paramsName(), Namespace: o.ParamsNamespace, Labels: o.Labels},
		Data: map[string]string{
			ParamMinRetryDuration:      defaults.FormatDuration(cfg.LogDefaults.MinRetryDuration),
			ParamMaxRetryTimes:         strconv.FormatInt(cfg.LogDefaults.MaxRetryTimes, 10),
			ParamRetryTimeout:          defaults.FormatDuration(cfg.LogDefaults.RetryTimeout),
			ParamReplaceSchemaDefaults: strconv.FormatBool(cfg.ReplaceSchemaDefaults),
		},
	}
	out := []runtime.Object{params}
	out = append(out, o.mutating("backup-defaults", "backups", backupMutation(), "object.spec.?backupMode.orValue('') == '"+defaults.BackupModeLog+"'")...)
	out = append(out, o.mutating("backupschedule-defaults", "backupschedules", scheduleMutation(), "has(object.spec.logBackupTemplate)")...)
	b := backupLocation()
	out = append(out, o.validating("backup-policy", "backups", changed(b), append(validationSharedVars(), b.validationVars()...), b.rules())...)
	bt, lt := templateLocation("bt", "backupTemplate"), templateLocation("lt", "logBackupTemplate")
	vars := append(validationSharedVars(), bt.validationVars()...)
	vars = append(vars, lt.validationVars()...)
	rules := append(bt.rules(), lt.rules()...)
	scheduleChanged := changed(bt, lt) + " || " + strings.Join([]string{
		"oldObject.spec.?backupTemplate.?backupMode != object.spec.?backupTemplate.?backupMode",
		"oldObject.spec.?logBackupTemplate.?backupMode != object.spec.?logBackupTemplate.?backupMode",
		"has(oldObject.spec.logBackupTemplate) != has(object.spec.logBackupTemplate)",
		"oldObject.spec.?maxBackups != object.spec.?maxBackups",
		"oldObject.spec.?maxReservedTime != object.spec.?maxReservedTime"}, " || ")
	rules = append(append(rules, modeRules()...), retentionRule())
	out = append(out, o.validating("backupschedule-policy", "backupschedules", scheduleChanged, vars, rules)...)
	return out
}

func constraints(resource string, ops ...admissionregistrationv1.OperationType) *admissionregistrationv1.MatchResources {
	return &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
		RuleWithOperations: admissionregistrationv1.RuleWithOperations{
			Operations: ops,
			Rule: admissionregistrationv1.Rule{APIGroups: []string{"pingcap.com"}, APIVersions: []string{"v1alpha1"},
				Resources: []string{resource}, Scope: ptr.To(admissionregistrationv1.NamespacedScope)},
		},
	}}}
}

func (o Options) paramRef() *admissionregistrationv1.ParamRef {
	return &admissionregistrationv1.ParamRef{Name: o.paramsName(), Namespace: o.ParamsNamespace,
		ParameterNotFoundAction: ptr.To(admissionregistrationv1.DenyAction)}
}

var paramKind = &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"}

func toVariables(vs []variable) []admissionregistrationv1.Variable {
	out := make([]admissionregistrationv1.Variable, 0, len(vs))
	for _, v := range vs {
		out = append(out, admissionregistrationv1.Variable{Name: v.name, Expression: v.expr})
	}
	return out
}

// mutating renders a MutatingAdmissionPolicy applying expr on CREATE where match holds,
// and its binding.
func (o Options) mutating(what, resource, expr, match string) []runtime.Object {
	vars := paramVars()
	switch resource {
	case "backups":
		vars = append(vars, backupLocation().fieldVars()...)
		vars = append(vars, backupLocation().schemaDefaultsVar())
	default:
		lt := templateLocation("lt", "logBackupTemplate")
		vars = append(vars, lt.fieldVars()...)
		vars = append(vars, lt.schemaDefaultsVar())
	}
	policy := &admissionregistrationv1.MutatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicy"},
		ObjectMeta: o.meta(o.name(what)),
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			ParamKind:        paramKind,
			MatchConstraints: constraints(resource, admissionregistrationv1.Create),
			MatchConditions:  []admissionregistrationv1.MatchCondition{{Name: "log-backups-only", Expression: match}},
			Variables:        toVariables(vars),
			Mutations: []admissionregistrationv1.Mutation{{
				PatchType:          admissionregistrationv1.PatchTypeApplyConfiguration,
				ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{Expression: expr},
			}},
			// As the mutating webhook: the reconciler applies the same defaults at run time.
			FailurePolicy:      ptr.To(admissionregistrationv1.Ignore),
			ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
		},
	}
	binding := &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicyBinding"},
		ObjectMeta: o.meta(o.name(what)),
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
			PolicyName:     policy.Name,
			ParamRef:       o.paramRef(),
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: o.NamespaceSelector},
		},
	}
	return []runtime.Object{policy, binding}
}

// changed is the match condition of a validating policy: a CREATE, or an UPDATE that
// changes one of the policies at ls. As the webhook's matchConditions, it spares the API
// server the rules on every status write of TiDB Operator (the rules also pass unchanged
// policies, so it only saves work).
func changed(ls ...location) string {
	parts := []string{"request.operation != 'UPDATE'"}
	for _, l := range ls {
		parts = append(parts, l.cel+" != "+l.old)
	}
	return strings.Join(parts, " || ")
}

// validating renders a ValidatingAdmissionPolicy with rules on CREATE and UPDATE (those
// match holds for), and its binding (Deny).
func (o Options) validating(what, resource, match string, vars []variable, rules []rule) []runtime.Object {
	validations := make([]admissionregistrationv1.Validation, 0, len(rules))
	for _, r := range rules {
		validations = append(validations, admissionregistrationv1.Validation{Expression: r.expr, MessageExpression: r.msg,
			Reason: ptr.To(metav1.StatusReasonInvalid)})
	}
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: o.meta(o.name(what)),
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			ParamKind:        paramKind,
			MatchConstraints: constraints(resource, admissionregistrationv1.Create, admissionregistrationv1.Update),
			MatchConditions:  []admissionregistrationv1.MatchCondition{{Name: "policy-changed", Expression: match}},
			Variables:        toVariables(vars),
			Validations:      validations,
			FailurePolicy:    ptr.To(admissionregistrationv1.Fail),
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: o.meta(o.name(what)),
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ParamRef:          o.paramRef(),
			MatchResources:    &admissionregistrationv1.MatchResources{NamespaceSelector: o.NamespaceSelector},
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
	return []runtime.Object{policy, binding}
}

// backupMutation sets a log Backup's policy to what defaulting gives it.
func backupMutation() string {
	minE, maxE, timeoutE := backupLocation().fillExprs()
	return fmt.Sprintf("Object{spec: Object.spec{%s: Object.spec.%s{%s: %s, %s: %s, %s: %s}}}",
		defaults.FieldPolicy, defaults.FieldPolicy,
		defaults.FieldMinRetryDuration, minE, defaults.FieldMaxRetryTimes, maxE, defaults.FieldRetryTimeout, timeoutE)
}

// scheduleMutation sets a schedule's logBackupTemplate's backupMode
// (defaults.Config.FillLogTemplateMode) and policy.
func scheduleMutation() string {
	lt := templateLocation("lt", "logBackupTemplate")
	minE, maxE, timeoutE := lt.fillExprs()
	mode := "object.spec.logBackupTemplate.?backupMode.orValue('')"
	modeE := fmt.Sprintf("(%[1]s == '' || %[1]s == '%[2]s') && variables.replace && !variables.keep ? optional.of('%[3]s') : optional.none()",
		mode, defaults.SchemaDefaultBackupMode, defaults.BackupModeLog)
	return fmt.Sprintf("Object{spec: Object.spec{logBackupTemplate: Object.spec.logBackupTemplate{?backupMode: %s, %s: Object.spec.logBackupTemplate.%s{%s: %s, %s: %s, %s: %s}}}}",
		modeE, defaults.FieldPolicy, defaults.FieldPolicy,
		defaults.FieldMinRetryDuration, minE, defaults.FieldMaxRetryTimes, maxE, defaults.FieldRetryTimeout, timeoutE)
}

// PoliciesOnly keeps the policies of Render's objects: what the chart ships as generated
// (files/admission-policies.yaml); it writes the params and the bindings from its values.
func PoliciesOnly(objs []runtime.Object) []runtime.Object {
	var out []runtime.Object
	for _, o := range objs {
		switch o.(type) {
		case *admissionregistrationv1.MutatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicy:
			out = append(out, o)
		}
	}
	return out
}

// YAML writes objects as one YAML stream, without the empty status and creation time
// typed objects carry.
func YAML(objs []runtime.Object) ([]byte, error) {
	var b strings.Builder
	for i, obj := range objs {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return nil, err
		}
		delete(u, "status")
		if meta, ok := u["metadata"].(map[string]any); ok {
			delete(meta, "creationTimestamp")
		}
		data, err := yaml.Marshal(u)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(data)
	}
	return []byte(b.String()), nil
}
