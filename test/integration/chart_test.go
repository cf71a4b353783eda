package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tidb-backup-guard/tidb-backup-guard/cmd/tidb-backup-guard/app"
	"github.com/tidb-backup-guard/tidb-backup-guard/defaults/nspolicy"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/assets"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/etcdtest"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

var chartDir = filepath.Join(testenv.RepoRoot(), "charts", "tidb-backup-guard")

// helm runs the helm built with the control plane.
func helm(args ...string) (string, error) {
	dir, err := assets.Dir("helm")
	if err != nil {
		return "", err
	}
	cmd := exec.Command(filepath.Join(dir, "helm"), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if err != nil {
		return out.String(), errors.New(errOut.String())
	}
	return out.String(), nil
}

// render returns the chart's objects for a release, with --set values.
func render(t *testing.T, release, namespace string, set ...string) []*unstructured.Unstructured {
	t.Helper()
	var args []string
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return renderArgs(t, release, namespace, args...)
}

// renderValues renders with a values file: for values --set would misread, such as the
// kernel probe's "{cluster}" templates (braces are --set's list syntax).
func renderValues(t *testing.T, release, namespace, values string) []*unstructured.Unstructured {
	t.Helper()
	file := filepath.Join(t.TempDir(), "values.yaml")
	require.NoError(t, os.WriteFile(file, []byte(values), 0o600))
	return renderArgs(t, release, namespace, "-f", file)
}

func renderArgs(t *testing.T, release, namespace string, extra ...string) []*unstructured.Unstructured {
	t.Helper()
	args := append([]string{"template", release, chartDir, "--namespace", namespace, "--kube-version", "1.37.0"}, extra...)
	out, err := helm(args...)
	require.NoError(t, err)
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(out), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
		}
		if m != nil {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
	return objs
}

func kinds(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind())
	}
	slices.Sort(out)
	return out
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind string, into any) {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind {
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, into))
			return
		}
	}
	t.Fatalf("no %s rendered", kind)
}

var secretModeValues = []string{"certs.mode=secret", "certs.secret.name=my-tls", "certs.secret.caBundle=" + "Zm9v"}

func TestChartLintAndTemplate(t *testing.T) {
	for _, tc := range chartCombinations {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"lint", chartDir, "--strict", "--kube-version", "1.37.0"}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			_, err := helm(args...)
			require.NoError(t, err)
			want := slices.Clone(tc.kinds)
			slices.Sort(want)
			assert.Equal(t, want, kinds(render(t, "guard", "guard-system", tc.set...)))
		})
	}
}

var chartBase = []string{"ClusterRole", "ClusterRoleBinding", "Deployment", "MutatingWebhookConfiguration",
	"PodDisruptionBudget", "Role", "RoleBinding", "Service", "ServiceAccount", "ValidatingWebhookConfiguration"}

// chartCombinations are the supported combinations of chart values, with the kinds each
// renders.
var chartCombinations = func() []struct {
	name  string
	set   []string
	kinds []string
} {
	base := chartBase
	return []struct {
		name  string
		set   []string
		kinds []string
	}{
		{name: "defaults (self-signed)", kinds: base},
		{name: "cert-manager", set: []string{"certs.mode=cert-manager"}, kinds: append([]string{"Certificate", "Issuer"}, base...)},
		{name: "cert-manager with an issuer", set: []string{"certs.mode=cert-manager", "certs.certManager.issuerRef.name=ca", "certs.certManager.issuerRef.kind=ClusterIssuer"}, kinds: append([]string{"Certificate"}, base...)},
		// No Role: without self-signed certificates and with leader election, only the Lease needs one.
		{name: "existing secret", set: secretModeValues, kinds: base},
		{name: "extras", set: []string{"networkPolicy.enabled=true", "metrics.serviceMonitor.enabled=true"}, kinds: append([]string{"NetworkPolicy", "ServiceMonitor"}, base...)},
		{name: "webhook only", set: []string{"components.reconciler=false"}, kinds: base},
		{name: "kernel probe", set: []string{"kernelProbe.enabled=true", "kernelProbe.timeout=1s", "kernelProbe.cacheTTL=5s"}, kinds: base},
		{name: "namespace policies, shadow mode", set: []string{"policy.namespacePolicies.team-a.maxRetryTimes=9", "reconciler.mode=shadow"},
			kinds: append([]string{"ConfigMap"}, base...)},
		{name: "reconciler only", set: []string{"components.webhook=false"}, kinds: []string{"ClusterRole", "ClusterRoleBinding", "Deployment", "PodDisruptionBudget", "Role", "RoleBinding", "Service", "ServiceAccount"}},
	}
}()

// dockerfileEntrypoint is the Dockerfile's ENTRYPOINT (exec form).
func dockerfileEntrypoint(t *testing.T) []string {
	t.Helper()
	d, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "Dockerfile"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^ENTRYPOINT (\[.*\])$`).FindSubmatch(d)
	require.NotNil(t, m, "the Dockerfile has an ENTRYPOINT in exec form")
	var entry []string
	require.NoError(t, json.Unmarshal(m[1], &entry))
	require.NotEmpty(t, entry)
	return entry
}

// What the chart passes is what the server accepts. For each combination of values above
// (and a few more that change the args), the command line the container runs (the image's
// entrypoint, then the rendered args) and its env go through the binary's own command tree
// and validation (app.ParseServe): a flag the chart passes that the server does not know,
// an argument serve does not take, or a value it refuses, fails here, without a cluster.
func TestChartArgsParse(t *testing.T) {
	more := [][]string{
		{"admission.mode=cel"},
		{"writeGuard.limit=50", "writeGuard.window=1m"},
		{"goMemLimit=200MiB"},
		{"replicaCount=1", "leaderElection.enabled=false"},
	}
	type combination struct {
		name string
		objs func(t *testing.T) []*unstructured.Unstructured
	}
	var all []combination
	for _, set := range more {
		all = append(all, combination{strings.Join(set, " "), func(t *testing.T) []*unstructured.Unstructured { return render(t, "guard", "guard-system", set...) }})
	}
	for _, tc := range chartCombinations {
		all = append(all, combination{tc.name, func(t *testing.T) []*unstructured.Unstructured { return render(t, "guard", "guard-system", tc.set...) }})
	}
	all = append(all, combination{"kernel probe with client TLS", func(t *testing.T) []*unstructured.Unstructured {
		return renderValues(t, "guard", "guard-system", kernelTLSValues("https://{cluster}-pd.{namespace}:2379"))
	}})
	for _, c := range all {
		t.Run("values "+c.name, func(t *testing.T) {
			var dep appsv1.Deployment
			find(t, c.objs(t), "Deployment", &dep)
			container := dep.Spec.Template.Spec.Containers[0]
			require.Empty(t, container.Command, "the image's entrypoint runs")
			require.NotEmpty(t, container.Args)
			env := map[string]string{}
			for _, e := range container.Env {
				switch {
				case e.ValueFrom == nil:
					env[e.Name] = e.Value
				case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
					env[e.Name] = "guard-system" // what the kubelet fills in
				default:
					t.Fatalf("env %s: a source this test cannot play: %+v", e.Name, e.ValueFrom)
				}
			}
			// The command line the container runs: the image's entrypoint (the Dockerfile's,
			// which hack/image copies), then the container's args in place of its CMD.
			argv := append(dockerfileEntrypoint(t)[1:], container.Args...)
			_, err := app.ParseServe(argv, func(name string) string { return env[name] })
			assert.NoError(t, err, "command line %q env %v", argv, env)
		})
	}
}

func TestChartSchemaRejects(t *testing.T) {
	for _, set := range []string{"foo=bar", "replicaCount=abc", "webhook.mutating.extra=1", "certs.mode=vault", "policy.maxRetryTimes=-1",
		"kernelProbe.pdEndpoint=grpc://pd:2379", "kernelProbe.timeout=3", "kernelProbe.extra=1", "goMemLimit=200M", "writeGuard.limit=-1", "writeGuard.window=60",
		"reconciler.mode=loud", "policy.namespacePolicies.team-a.maxRetryTime=3", "policy.namespacePolicies.Team_A.maxRetryTimes=3",
		"policy.namespacePolicies.team-a.minRetryDuration=1d"} {
		_, err := helm("template", "guard", chartDir, "--kube-version", "1.37.0", "--set", set)
		require.Error(t, err, set)
		assert.Contains(t, err.Error(), "schema", set)
	}
	_, err := helm("template", "guard", chartDir, "--kube-version", "1.37.0", "--set-string", "policy.minRetryDuration=30")
	require.Error(t, err, "a duration without a unit")
}

// installCertManagerCRDs installs cert-manager's CRDs from its Go module.
func installCertManagerCRDs(t *testing.T) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager").Output()
	require.NoError(t, err, "find the cert-manager module")
	dir := filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds")
	_, err = envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: []string{dir}, ErrorIfPathMissing: true})
	require.NoError(t, err)
	crd := &apiextensionsv1.CustomResourceDefinition{}
	require.NoError(t, env.Client.Get(t.Context(), client.ObjectKey{Name: "certificates.cert-manager.io"}, crd))
}

// Every rendered object, in every certificate mode, is accepted by the API server's
// schema validation (server-side dry-run).
func TestChartObjectsAccepted(t *testing.T) {
	installCertManagerCRDs(t)
	ctx := t.Context()
	ns := namespace(t)
	for _, set := range [][]string{nil, {"certs.mode=cert-manager"}, secretModeValues, {"networkPolicy.enabled=true", "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.monitoring=enabled"}} {
		for _, obj := range render(t, "guard", ns, set...) {
			err := env.Client.Create(ctx, obj, client.DryRunAll)
			assert.NoError(t, err, "%v: %s %s", set, obj.GetKind(), obj.GetName())
		}
	}

	// The Certificate, read with cert-manager's own types: it names the Service and the
	// Secret the Deployment mounts.
	objs := render(t, "guard", ns, "certs.mode=cert-manager")
	var crt cmapi.Certificate
	find(t, objs, "Certificate", &crt)
	var dep appsv1.Deployment
	find(t, objs, "Deployment", &dep)
	assert.Contains(t, crt.Spec.DNSNames, "guard-tidb-backup-guard."+ns+".svc")
	require.NotNil(t, crt.Spec.PrivateKey)
	assert.Equal(t, cmapi.ECDSAKeyAlgorithm, crt.Spec.PrivateKey.Algorithm)
	assert.Equal(t, crt.Spec.SecretName, dep.Spec.Template.Spec.Volumes[0].Secret.SecretName)
	var m admissionregistrationv1.MutatingWebhookConfiguration
	find(t, objs, "MutatingWebhookConfiguration", &m)
	assert.Equal(t, ns+"/"+crt.Name, m.Annotations["cert-manager.io/inject-ca-from"])
}

// The chart's webhook configurations and the ones the suites register (testenv) agree on
// everything but the client configuration and the failure policy.
func TestChartWebhooksMatchTheTestedOnes(t *testing.T) {
	objs := render(t, "guard", "guard-system")
	var cm admissionregistrationv1.MutatingWebhookConfiguration
	var cv admissionregistrationv1.ValidatingWebhookConfiguration
	find(t, objs, "MutatingWebhookConfiguration", &cm)
	find(t, objs, "ValidatingWebhookConfiguration", &cv)
	tm, tv := testenv.WebhookConfigs("https://unused", nil)
	require.Len(t, cm.Webhooks, len(tm.Webhooks))
	for i := range cm.Webhooks {
		c, e := cm.Webhooks[i], tm.Webhooks[i]
		assert.Equal(t, e.Name, c.Name)
		assert.Equal(t, strings.TrimPrefix(*e.ClientConfig.URL, "https://unused"), *c.ClientConfig.Service.Path)
		assert.Equal(t, e.Rules, c.Rules)
		assert.Equal(t, e.MatchConditions, c.MatchConditions)
		assert.Equal(t, e.SideEffects, c.SideEffects)
		assert.Equal(t, e.AdmissionReviewVersions, c.AdmissionReviewVersions)
	}
	require.Len(t, cv.Webhooks, len(tv.Webhooks))
	for i := range cv.Webhooks {
		c, e := cv.Webhooks[i], tv.Webhooks[i]
		assert.Equal(t, e.Name, c.Name)
		assert.Equal(t, strings.TrimPrefix(*e.ClientConfig.URL, "https://unused"), *c.ClientConfig.Service.Path)
		assert.Equal(t, e.Rules, c.Rules)
		assert.Equal(t, e.MatchConditions, c.MatchConditions)
		assert.Equal(t, e.SideEffects, c.SideEffects)
	}
	assert.Equal(t, admissionregistrationv1.Ignore, *cm.Webhooks[0].FailurePolicy, "mutating: the reconciler covers for it")
	assert.Equal(t, admissionregistrationv1.Fail, *cv.Webhooks[0].FailurePolicy)
}

// The RBAC rules are exactly these; every one is used by the code (the test below runs
// the server with nothing more).
func TestChartRBACIsMinimal(t *testing.T) {
	objs := render(t, "guard", "guard-system")
	var cr rbacv1.ClusterRole
	var r rbacv1.Role
	find(t, objs, "ClusterRole", &cr)
	find(t, objs, "Role", &r)
	rule := func(group, resource, name string, verbs ...string) rbacv1.PolicyRule {
		p := rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{resource}, Verbs: verbs}
		if name != "" {
			p.ResourceNames = []string{name}
		}
		return p
	}
	assert.Equal(t, []rbacv1.PolicyRule{
		rule("pingcap.com", "backups", "", "get", "list", "watch", "update", "patch"),
		rule("pingcap.com", "backupschedules", "", "get", "list", "watch"), // read only: the ScheduleDeletesLogBackup warning
		rule("batch", "jobs", "", "get", "list", "watch", "delete"),
		rule("", "pods", "", "list"),
		rule("apiextensions.k8s.io", "customresourcedefinitions", "backups.pingcap.com", "get"),
		rule("events.k8s.io", "events", "", "create", "patch"),
		rule("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "guard-tidb-backup-guard-mutating", "get", "list", "watch", "patch"),
		rule("admissionregistration.k8s.io", "validatingwebhookconfigurations", "guard-tidb-backup-guard-validating", "get", "list", "watch", "patch"),
	}, cr.Rules)
	assert.Equal(t, []rbacv1.PolicyRule{
		rule("coordination.k8s.io", "leases", "", "create"),
		rule("coordination.k8s.io", "leases", "guard-tidb-backup-guard-reconciler", "get", "update"),
		rule("", "events", "", "create", "patch"),
		rule("", "secrets", "", "create"),
		rule("", "secrets", "guard-tidb-backup-guard-webhook-cert", "get", "list", "watch", "update"),
	}, r.Rules)
	// The kernel probe adds "get" on Secrets only with client TLS, and nothing else.
	var withTLS, withoutTLS rbacv1.ClusterRole
	find(t, renderValues(t, "guard", "guard-system", kernelTLSValues("https://{cluster}-pd.{namespace}:2379")), "ClusterRole", &withTLS)
	find(t, renderValues(t, "guard", "guard-system", "kernelProbe:\n  enabled: true\n"), "ClusterRole", &withoutTLS)
	assert.Equal(t, cr.Rules, withoutTLS.Rules)
	assert.Equal(t, append(slices.Clone(cr.Rules[:6]), append([]rbacv1.PolicyRule{rule("", "secrets", "", "get")}, cr.Rules[6:]...)...), withTLS.Rules)
	// Namespace policies add reading their one ConfigMap, and Events about it.
	var withPolicies rbacv1.Role
	find(t, render(t, "guard", "guard-system", "policy.namespacePolicies.team-a.maxRetryTimes=9"), "Role", &withPolicies)
	assert.Equal(t, append(slices.Clone(r.Rules[:3]), append([]rbacv1.PolicyRule{
		rule("", "configmaps", "guard-tidb-backup-guard-namespace-policies", "get", "list", "watch"),
		rule("events.k8s.io", "events", "", "create", "patch"),
	}, r.Rules[3:]...)...), withPolicies.Rules)
	for _, rules := range [][]rbacv1.PolicyRule{cr.Rules, r.Rules} {
		for _, p := range rules {
			for _, s := range slices.Concat(p.APIGroups, p.Resources, p.Verbs) {
				assert.NotEqual(t, "*", s, "no wildcards")
			}
		}
	}
}

// The server runs with the chart's arguments as the chart's ServiceAccount (the API server
// impersonates it, so RBAC applies to every call), and does its whole job: the
// self-signed certificate in its Secret, the bundle in the webhook configurations, the
// Lease, and a log backup retried to success.
func TestChartRBACIsSufficient(t *testing.T) {
	ctx := t.Context()
	const release, ns = "guard", "guard-system"
	require.NoError(t, client.IgnoreAlreadyExists(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})))
	// Nothing may call these webhooks here (their Service has no pods): select no namespace.
	opts, asSA := runChart(t, ns, render(t, release, ns, "webhook.namespaceSelector.matchLabels.nothing=selected"))

	// The self-signed certificate: the Secret, and its bundle in both configurations.
	sec := &corev1.Secret{}
	require.NoError(t, env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: opts.CertSecretName}, sec))
	require.Eventually(t, func() bool {
		m := &admissionregistrationv1.MutatingWebhookConfiguration{}
		v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if env.Client.Get(ctx, client.ObjectKey{Name: opts.MutatingConfigName}, m) != nil ||
			env.Client.Get(ctx, client.ObjectKey{Name: opts.ValidatingConfigName}, v) != nil {
			return false
		}
		return bytes.Equal(m.Webhooks[0].ClientConfig.CABundle, sec.Data["ca-bundle.crt"]) &&
			bytes.Equal(v.Webhooks[1].ClientConfig.CABundle, sec.Data["ca-bundle.crt"])
	}, 10*time.Second, 50*time.Millisecond, "the bundle was not injected")
	checkReconcilerUnderChartRBAC(t, ns, opts)

	// And nothing beyond: the ServiceAccount cannot read other Secrets.
	c, err := client.New(asSA, client.Options{})
	require.NoError(t, err)
	err = c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "someone-elses"}, &corev1.Secret{})
	assert.True(t, apierrors.IsForbidden(err), "%v", err)
}

// The namespace policies ConfigMap is read, watched and reported on as the chart's
// ServiceAccount: the server is only ready once it has read it, and a bad edit gets its
// Warning Event.
func TestChartRBACCoversNamespacePolicies(t *testing.T) {
	ctx := t.Context()
	const release, ns = "np", "np-system"
	require.NoError(t, client.IgnoreAlreadyExists(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})))
	runChart(t, ns, render(t, release, ns, "webhook.namespaceSelector.matchLabels.nothing=selected",
		"policy.namespacePolicies.team-a.maxRetryTimes=9", "reconciler.mode=shadow"))
	cm := &corev1.ConfigMap{}
	require.NoError(t, env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: release + "-tidb-backup-guard-namespace-policies"}, cm))
	assert.Equal(t, map[string]string{"team-a": `{"maxRetryTimes":9}`}, cm.Data)
	cm.Data["team-b"] = "maxRetryTimes: lots"
	require.NoError(t, env.Client.Update(ctx, cm))
	require.Eventually(t, func() bool {
		return strings.Contains(eventNoteOf(t, ns, "ConfigMap", cm.Name, nspolicy.ReasonInvalidNamespacePolicy), "data[team-b]")
	}, 10*time.Second, 50*time.Millisecond, "the Event is written under the chart's RBAC")
}

// runChart creates the chart's RBAC objects and webhook configurations, and runs the
// server with the Deployment's own arguments as the chart's ServiceAccount (the API
// server impersonates it, so RBAC applies to every call).
func runChart(t *testing.T, ns string, objs []*unstructured.Unstructured) (*app.Options, *rest.Config) {
	t.Helper()
	ctx := t.Context()
	var dep appsv1.Deployment
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment":
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &dep))
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ConfigMap",
			"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
			require.NoError(t, client.IgnoreAlreadyExists(env.Client.Create(ctx, o)), o.GetKind())
			obj := o
			t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
		}
	}

	// The Deployment's own arguments, parsed by the server's own flag set.
	container := dep.Spec.Template.Spec.Containers[0]
	require.Equal(t, "serve", container.Args[0])
	opts, _, fs := app.ServeFlags()
	require.NoError(t, fs.Parse(container.Args[1:]))

	sa := "system:serviceaccount:" + ns + ":" + dep.Spec.Template.Spec.ServiceAccountName
	asSA := rest.CopyConfig(env.Config)
	asSA.Impersonate = rest.ImpersonationConfig{UserName: sa, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	port, err := testenv.FreePort()
	require.NoError(t, err)

	s, err := env.RunApp(ctx, testLog(t), func(o *app.Options) {
		*o = *opts
		o.CertNamespace, o.LeaderElectionNamespace = ns, ns // from the pod's namespace in a cluster
		o.WebhookHost, o.WebhookPort = "127.0.0.1", port
		o.MetricsBindAddress, o.HealthProbeBindAddress = "0", "0"
	}, app.WithRestConfig(asSA))
	require.NoError(t, err, "the server did not become ready as %s", sa)
	t.Cleanup(func() { assert.NoError(t, s.Stop()) })
	return opts, asSA
}

// waitForLeader waits until the Lease in ns has a holder.
func waitForLeader(t *testing.T, ns, lease string) {
	t.Helper()
	require.Eventually(t, func() bool {
		l := &coordinationv1.Lease{}
		return env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: lease}, l) == nil && l.Spec.HolderIdentity != nil
	}, 20*time.Second, 100*time.Millisecond, "no leader")
}

// checkReconcilerUnderChartRBAC waits for leadership, then retries a log backup.
func checkReconcilerUnderChartRBAC(t *testing.T, ns string, opts *app.Options) {
	t.Helper()
	ctx := t.Context()
	waitForLeader(t, ns, opts.LeaderElectionID)
	op := operator(t)
	op.Script("pitr", testenv.BRError, testenv.Succeed)
	require.NoError(t, op.Start(ctx, richLogBackup(t, "pitr", quickPolicy)))
	b := eventually(t, op.Namespace, "pitr", 30*time.Second, "recovers under the chart's RBAC",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
	assert.Len(t, recordsOf(t, b), 1)
	require.Eventually(t, func() bool { return eventReasons(t, op.Namespace, "pitr")["RetrySucceeded"] == 1 }, 10*time.Second, 50*time.Millisecond,
		"Events are written under the chart's RBAC")
	settled(t, op, map[string]int{"pitr": 1})
}

// The chart's pod passes the API server's own Pod Security admission at the restricted
// level: non-root, no privilege escalation, all capabilities dropped, RuntimeDefault
// seccomp; and its root filesystem is read-only.
func TestChartPodIsRestricted(t *testing.T) {
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "restricted-",
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	require.NoError(t, env.Client.Create(ctx, ns))
	for _, set := range [][]string{nil, {"certs.mode=cert-manager"}} {
		var dep appsv1.Deployment
		find(t, render(t, "guard", ns.Name, set...), "Deployment", &dep)
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "guard", Namespace: ns.Name}, Spec: dep.Spec.Template.Spec}
		require.NoError(t, env.Client.Create(ctx, pod, client.DryRunAll), "%v", set)
		c := dep.Spec.Template.Spec.Containers[0]
		require.NotNil(t, c.SecurityContext.ReadOnlyRootFilesystem)
		assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	}
	// The check has teeth: a root container is refused.
	var dep appsv1.Deployment
	find(t, render(t, "guard", ns.Name), "Deployment", &dep)
	spec := dep.Spec.Template.Spec
	spec.SecurityContext.RunAsNonRoot, spec.SecurityContext.RunAsUser = nil, new(int64)
	err := env.Client.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "root", Namespace: ns.Name}, Spec: spec}, client.DryRunAll)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "violates PodSecurity")
}

// kernelTLSValues turns on the kernel probe with client TLS from TiDB Operator's client
// Secret.
func kernelTLSValues(endpoint string) string {
	return "kernelProbe:\n  enabled: true\n  pdEndpoint: \"" + endpoint + "\"\n  tlsSecret: \"{cluster}-cluster-client-secret\"\n"
}

// The kernel probe with client TLS works under the chart's RBAC: the Secret is read as
// the chart's ServiceAccount, and a failed log-start whose task PD holds is recovered.
// The ServiceAccount can get that Secret but list no Secrets.
func TestChartRBACCoversTheKernelProbe(t *testing.T) {
	ctx := t.Context()
	const release, ns = "kernel", "kernel-system"
	require.NoError(t, client.IgnoreAlreadyExists(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})))
	e, cli := etcdtest.StartT(t, etcdtest.Options{TLS: true})
	require.NoError(t, etcdtest.PutTask(ctx, cli, "pitr", 314))
	opts, asSA := runChart(t, ns, renderValues(t, release, ns, "components:\n  webhook: false\n"+kernelTLSValues(e.Endpoint)))
	require.Equal(t, app.KernelProbePDEtcd, opts.KernelProbe, "the chart turns the probe on")
	require.Equal(t, "{cluster}-cluster-client-secret", opts.KernelTLSSecret)

	op := operator(t)
	// TiDB Operator's tracker reads its PD without TLS: the same task there.
	require.NoError(t, etcdtest.PutTask(ctx, op.PD, "pitr", 314))
	require.NoError(t, env.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: op.Namespace, Name: "basic-cluster-client-secret"},
		Data:       map[string][]byte{"ca.crt": e.CA.PEM, corev1.TLSCertKey: e.ClientCert, corev1.TLSPrivateKeyKey: e.ClientKey},
	}))
	waitForLeader(t, ns, opts.LeaderElectionID)
	op.Script("pitr", testenv.PodDeath)
	require.NoError(t, op.Start(ctx, richLogBackup(t, "pitr", quickPolicy)))
	b := eventually(t, op.Namespace, "pitr", 30*time.Second, "recovered under the chart's RBAC",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
	commitTs, _, _ := unstructured.NestedString(b.Object, "status", "commitTs")
	assert.Equal(t, "314", commitTs)
	require.Eventually(t, func() bool { return eventReasons(t, op.Namespace, "pitr")["RecoveredFromKernel"] == 1 }, 10*time.Second, 50*time.Millisecond)

	c, err := client.New(asSA, client.Options{})
	require.NoError(t, err)
	err = c.List(ctx, &corev1.SecretList{}, client.InNamespace(op.Namespace))
	assert.True(t, apierrors.IsForbidden(err), "listing Secrets: %v", err)
	settled(t, op, map[string]int{"pitr": 1})
}

// GOMEMLIMIT reaches the container, in a form the Go runtime accepts, below the memory limit.
func TestChartSetsGOMEMLIMIT(t *testing.T) {
	envOf := func(set ...string) map[string]string {
		var dep appsv1.Deployment
		find(t, render(t, "guard", "guard-system", set...), "Deployment", &dep)
		out := map[string]string{}
		for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
			out[e.Name] = e.Value
		}
		limit := dep.Spec.Template.Spec.Containers[0].Resources.Limits.Memory()
		if v, ok := out["GOMEMLIMIT"]; ok {
			q, err := resource.ParseQuantity(strings.TrimSuffix(v, "B"))
			require.NoError(t, err, v)
			assert.Less(t, q.Value(), limit.Value(), "GOMEMLIMIT %s is below the memory limit %s", v, limit)
		}
		return out
	}
	assert.Equal(t, "200MiB", envOf()["GOMEMLIMIT"])
	// The Go runtime parses it: the go command, a Go program, refuses to start otherwise.
	goCmd := exec.Command("go", "version")
	goCmd.Env = append(os.Environ(), "GOMEMLIMIT="+envOf()["GOMEMLIMIT"])
	out, err := goCmd.CombinedOutput()
	require.NoError(t, err, string(out))
	_, set := envOf("goMemLimit=")["GOMEMLIMIT"]
	assert.False(t, set, "empty turns it off")
}
