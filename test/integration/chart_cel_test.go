package integration

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
	"github.com/tidb-backup-guard/tidb-backup-guard/webhook/admissionpolicy"
)

// servesMAP is what a cluster that serves MutatingAdmissionPolicy v1 tells helm.
const servesMAP = "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"

// TestChartAdmissionModes: auto picks CEL only where MutatingAdmissionPolicy v1 is served;
// CEL mode runs no webhook (no configurations, no certificates, only the reconciler);
// an explicit cel renders offline, without asking the cluster.
func TestChartAdmissionModes(t *testing.T) {
	webhookKinds := []string{"ClusterRole", "ClusterRoleBinding", "Deployment", "MutatingWebhookConfiguration",
		"PodDisruptionBudget", "Role", "RoleBinding", "Service", "ServiceAccount", "ValidatingWebhookConfiguration"}
	celKinds := []string{"ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "MutatingAdmissionPolicy",
		"MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding", "MutatingAdmissionPolicyBinding", "PodDisruptionBudget",
		"Role", "RoleBinding", "Service", "ServiceAccount", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicy",
		"ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicyBinding"}
	sorted := func(k []string) []string { k = slices.Clone(k); slices.Sort(k); return k }
	all := func(objs []*unstructured.Unstructured) []string {
		var out []string
		for _, o := range objs {
			out = append(out, o.GetKind())
		}
		slices.Sort(out)
		return out
	}
	assert.Equal(t, sorted(webhookKinds), all(renderArgs(t, "guard", "guard-system", "--set", "admission.mode=auto")), "auto, no MAP v1: webhooks")
	assert.Equal(t, sorted(celKinds), all(renderArgs(t, "guard", "guard-system", "--set", "admission.mode=auto", "--api-versions", servesMAP)), "auto with MAP v1: CEL")
	assert.Equal(t, sorted(webhookKinds), all(renderArgs(t, "guard", "guard-system", "--api-versions", servesMAP)), "webhook is the default")
	cel := renderArgs(t, "guard", "guard-system", "--set", "admission.mode=cel", "--api-versions", servesMAP)
	assert.Equal(t, sorted(celKinds), all(cel))
	for _, o := range cel {
		if o.GetKind() == "Deployment" {
			args, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			c := args[0].(map[string]any)
			assert.Contains(t, c["args"], "--components=reconciler", "CEL mode: the server runs only the reconciler")
		}
	}
	// An explicit cel is the user's decision: it renders offline (helm template knows no
	// API versions there, as in GitOps tools), and only auto consults the capabilities.
	offline, err := helm("template", "guard", chartDir, "--kube-version", "1.37.0", "--set", "admission.mode=cel")
	require.NoError(t, err, offline)
	assert.Equal(t, all(cel), all(renderArgs(t, "guard", "guard-system", "--set", "admission.mode=cel")), "cel renders the same offline")
}

// TestChartCELModeIsRenderPolicies: the chart's CEL objects are exactly what
// render-policies writes for the same values, and they work: applied to the API server,
// a log Backup is defaulted and a malformed policy refused, in the selected namespaces
// only.
func TestChartCELModeIsRenderPolicies(t *testing.T) {
	ctx := t.Context()
	const release, ns = "celchart", "celchart-system"
	file := filepath.Join(t.TempDir(), "values.yaml")
	require.NoError(t, os.WriteFile(file, []byte("admission: {mode: cel}\npolicy: {maxRetryTimes: 7}\n"+
		"webhook: {namespaceSelector: {matchLabels: {"+admissionLabel+": chart-cel}}}\n"), 0o600))
	values := []string{"-f", file, "--api-versions", servesMAP}
	chart := map[string]*unstructured.Unstructured{}
	for _, o := range renderArgs(t, release, ns, values...) {
		switch o.GetKind() {
		case "ConfigMap", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
			chart[o.GetKind()+"/"+o.GetName()] = o
		}
	}
	cfg := defaults.DefaultConfig()
	cfg.LogDefaults.MaxRetryTimes = 7
	goObjs := admissionpolicy.Render(cfg, admissionpolicy.Options{Prefix: release + "-tidb-backup-guard", ParamsNamespace: ns,
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{admissionLabel: "chart-cel"}}})
	require.Len(t, chart, len(goObjs))
	for _, o := range goObjs {
		m, err := runtimeToUnstructured(o)
		require.NoError(t, err)
		want := &unstructured.Unstructured{Object: m}
		got, ok := chart[want.GetKind()+"/"+want.GetName()]
		require.True(t, ok, "the chart has no %s %s", want.GetKind(), want.GetName())
		for _, f := range []string{"spec", "data"} {
			assert.Equal(t, roundTrip(t, want.Object)[f], roundTrip(t, got.Object)[f], "%s %s: %s", want.GetKind(), want.GetName(), f)
		}
	}

	// Applied, they do the job.
	require.NoError(t, client.IgnoreAlreadyExists(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})))
	for _, key := range []string{"ConfigMap/" + release + "-tidb-backup-guard-admission-params"} {
		obj := chart[key]
		obj.SetNamespace(ns)
		require.NoError(t, env.Client.Create(ctx, obj))
	}
	for key, obj := range chart {
		if obj.GetKind() == "ConfigMap" {
			continue
		}
		require.NoError(t, env.Client.Create(ctx, obj), key)
		o := obj
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
	}
	selected := namespace(t)
	label(t, selected, "chart-cel")
	waitForCEL(t, selected)
	b := celCorpusBackup("defaulted", nil)
	b.SetNamespace(selected)
	require.NoError(t, env.Client.Create(ctx, b))
	assert.Equal(t, map[string]any{"minRetryDuration": "30s", "maxRetryTimes": int64(7), "retryTimeout": "30m"},
		policy(t, fetch(t, selected, "defaulted"), "spec"), "the chart's values reach the policies")
	other := namespace(t)
	b = celCorpusBackup("untouched", nil)
	b.SetNamespace(other)
	require.NoError(t, env.Client.Create(ctx, b))
	_, found, _ := unstructured.NestedMap(fetch(t, other, "untouched").Object, "spec", "backoffRetryPolicy")
	assert.False(t, found, "a namespace the selector does not select is left alone")
	for _, n := range []string{selected, other} {
		_, err := env.Settle(ctx, n, testenv.SettleHold, 30*time.Second)
		require.NoError(t, err)
	}
}

// TestChartAutoModeOnTheCluster renders admission.mode auto with helm reading the real API
// server's capabilities (--validate asks the cluster, as helm install does): CEL where it
// serves MutatingAdmissionPolicy v1 (1.36 and later), the webhooks on older servers
// (make test-compat runs this against 1.30).
func TestChartAutoModeOnTheCluster(t *testing.T) {
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	require.NoError(t, err)
	version, err := dc.ServerVersion()
	require.NoError(t, err)
	served := false
	if list, err := dc.ServerResourcesForGroupVersion("admissionregistration.k8s.io/v1"); err == nil {
		for _, r := range list.APIResources {
			served = served || r.Kind == "MutatingAdmissionPolicy"
		}
	}
	minor, err := strconv.Atoi(strings.TrimSuffix(version.Minor, "+"))
	require.NoError(t, err)
	assert.Equal(t, minor >= 36, served, "MutatingAdmissionPolicy v1 is served from 1.36 (server %s)", version.GitVersion)

	out, err := helm("template", "guard", chartDir, "--namespace", "guard-system", "--set", "admission.mode=auto",
		"--validate", "--kubeconfig", env.Kubeconfig)
	require.NoError(t, err)
	want, notWant := "kind: ValidatingWebhookConfiguration", "kind: MutatingAdmissionPolicy\n"
	if served {
		want, notWant = notWant, want
	}
	assert.Contains(t, out, want, "server %s", version.GitVersion)
	assert.NotContains(t, out, notWant, "server %s", version.GitVersion)
	t.Logf("Kubernetes %s: admission.mode auto renders %q", version.GitVersion, strings.TrimPrefix(strings.TrimSpace(want), "kind: "))
}
