package integration

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

func TestScratchCEL(t *testing.T) {
	ctx := t.Context()
	ns := namespace(t)
	label(t, ns, "scratch")
	exprs := []string{
		"duration(variables.m.value()) > duration('1s')",
		"duration(string(variables.m.value())) > duration('1s')",
		"duration(variables.mo) > duration('1s')",
		"duration(variables.m.orValue('1s')) > duration('1s')",
		"duration(variables.s) > duration('1s')",
		"duration(object.spec.?backoffRetryPolicy.?minRetryDuration.orValue('')) > duration('1s')",
		"duration(variables.p.minRetryDuration) > duration('1s')",
		"duration(params_free()) > duration('1s')",
	}
	for i, e := range exprs {
		name := "scratch-" + string(rune('a'+i))
		vap := &admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
				MatchConstraints: constraintsFor("backups"),
				Validations:      []admissionregistrationv1.Validation{{Expression: e}},
				Variables: []admissionregistrationv1.Variable{{Name: "m", Expression: "object.spec.?backoffRetryPolicy.?minRetryDuration"},
					{Name: "s", Expression: "object.spec.backoffRetryPolicy.minRetryDuration"},
					{Name: "mo", Expression: "object.spec.?backoffRetryPolicy.?minRetryDuration.orValue('')"},
					{Name: "p", Expression: "object.spec.backoffRetryPolicy"}},
				FailurePolicy:    ptr.To(admissionregistrationv1.Fail),
			}}
		if err := env.Client.Create(ctx, vap); err != nil {
			t.Logf("%s: %v", e, err)
			continue
		}
		b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: name,
				MatchResources:    &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{admissionLabel: "scratch"}}},
				ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn}}}
		require.NoError(t, env.Client.Create(ctx, b))
	}
	time.Sleep(3 * time.Second)
	p := testenv.Empty(testenv.BackupGVK)
	p.SetNamespace(ns)
	p.SetName("probe")
	p.Object["spec"] = map[string]any{"backupMode": "log", "backoffRetryPolicy": map[string]any{"minRetryDuration": "5s"}}
	var warnings []string
	err := clientWithWarnings(t, &warnings).Create(ctx, p, client.DryRunAll)
	t.Logf("err %v", err)
	for _, w := range warnings {
		t.Logf("warning: %s", w)
	}
}

func constraintsFor(resource string) *admissionregistrationv1.MatchResources {
	return &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
		RuleWithOperations: admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule: admissionregistrationv1.Rule{APIGroups: []string{"pingcap.com"}, APIVersions: []string{"v1alpha1"},
				Resources: []string{resource}},
		},
	}}}
}
