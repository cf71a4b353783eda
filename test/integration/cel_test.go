package integration

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
	"github.com/tidb-backup-guard/tidb-backup-guard/webhook/admissionpolicy"
)

// admissionLabel selects, per namespace, which admission the differential suite gives it.
const admissionLabel = "tidb-backup-guard.io/admission"

// celCase is one request of the corpus: create obj; or, with update, create obj while no
// admission applies (an old object) and then update it with update.
type celCase struct {
	name   string
	obj    *unstructured.Unstructured
	update func(*unstructured.Unstructured)
}

// outcome is what one mode made of a case.
type outcome struct {
	err      error
	stored   map[string]any
	warnings []string
}

// installPolicies renders the CEL mode for namespaces labelled mode=cel and waits until
// the API server runs both kinds of policy (in a labelled namespace of its own).
func installPolicies(t *testing.T, cfg defaults.Config, paramsNS string) {
	t.Helper()
	ctx := t.Context()
	probeNS := namespace(t)
	label(t, probeNS, "cel")
	objs := admissionpolicy.Render(cfg, admissionpolicy.Options{Prefix: "guard-test", ParamsNamespace: paramsNS,
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{admissionLabel: "cel"}}})
	for _, o := range objs {
		u := &unstructured.Unstructured{}
		data, err := runtimeToUnstructured(o)
		require.NoError(t, err)
		u.Object = data
		require.NoError(t, env.Client.Create(ctx, u), "create %s %s", u.GetKind(), u.GetName())
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), u) })
	}
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		probe := func(policy map[string]any) (*unstructured.Unstructured, error) {
			p := testenv.Empty(testenv.BackupGVK)
			p.SetNamespace(probeNS)
			p.SetName("policy-probe")
			p.Object["spec"] = map[string]any{"backupMode": "log"}
			if policy != nil {
				p.Object["spec"].(map[string]any)["backoffRetryPolicy"] = policy
			}
			return p, env.Client.Create(ctx, p, client.DryRunAll)
		}
		p, err := probe(nil)
		if err != nil {
			last = "defaulting probe: " + err.Error()
			return false, nil //nolint:nilerr // not ready: keep polling
		}
		v, _, _ := unstructured.NestedString(p.Object, "spec", "backoffRetryPolicy", "minRetryDuration")
		_, err = probe(map[string]any{"minRetryDuration": "soon", "maxRetryTimes": int64(5), "retryTimeout": "30m"})
		last = fmt.Sprintf("defaulted %q; refusal: %v", v, err)
		return v != "" && err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy"), nil
	})
	require.NoError(t, err, "the policies never took effect; last probe: %s", last)
}

// TestCELModeMatchesTheWebhooks gives a generated corpus to the webhooks and to the
// rendered policies, each in its own namespace of one API server, and compares what was
// stored and what was refused. The differences must be exactly the documented ones
// (celDifferences), no more, no fewer.
func TestCELModeMatchesTheWebhooks(t *testing.T) {
	ctx := t.Context()
	nsWebhook, nsCEL := namespace(t), namespace(t)
	server := startWebhooks(t)
	// The webhooks only for nsWebhook; the policies only for nsCEL.
	require.NoError(t, testenv.RegisterWebhooksSelecting(ctx, env.Client, server.BaseURL, server.CABundle,
		&metav1.LabelSelector{MatchLabels: map[string]string{admissionLabel: "webhook"}}))
	installPolicies(t, defaults.DefaultConfig(), nsCEL)

	cases := celCorpus(t)
	// Old objects first, while neither namespace is labelled: no admission applies.
	for _, c := range cases {
		if c.update == nil {
			continue
		}
		for _, ns := range []string{nsWebhook, nsCEL} {
			o := c.obj.DeepCopy()
			o.SetNamespace(ns)
			require.NoError(t, env.Client.Create(ctx, o), "old object %s", c.name)
		}
	}
	label(t, nsWebhook, "webhook")
	label(t, nsCEL, "cel")
	waitForBoth(t, nsWebhook, "admission webhook")
	waitForCEL(t, nsCEL)

	found := map[string]string{}
	var webhookWarned int
	for _, c := range cases {
		w, p := runCase(t, c, nsWebhook), runCase(t, c, nsCEL)
		if len(w.warnings) > 0 {
			webhookWarned++
		}
		assert.Empty(t, p.warnings, "%s: the policies never warn (MutatingAdmissionPolicy cannot)", c.name)
		switch {
		case (w.err == nil) != (p.err == nil):
			found[c.name] = fmt.Sprintf("accept/reject: webhook %v, policies %v", w.err, p.err)
		case w.err != nil:
			if d := messageDifference(w.err, p.err); d != "" {
				found[c.name] = "message: " + d
			}
		default:
			if !assert.ObjectsAreEqual(w.stored, p.stored) {
				found[c.name] = fmt.Sprintf("stored: webhook %v, policies %v", w.stored["spec"], p.stored["spec"])
			}
		}
	}
	var names []string
	for n := range found {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Logf("difference %s: %s", n, found[n])
	}
	documented := map[string]bool{}
	for name := range celDifferences {
		documented[name] = true
	}
	assert.Equal(t, documented, keysOf(found), "the differences found must be the documented ones (README, CEL mode)")
	// Row "no warnings": the webhooks warned on these, the policies on none.
	assert.Greater(t, webhookWarned, 50, "the webhooks warn when they default or keep a bad value")
	t.Logf("%d cases, %d documented differences; the webhooks warned on %d", len(cases), len(found), webhookWarned)

	// The namespaceSelector: in a namespace neither selects, nothing applies.
	other := namespace(t)
	u := celCorpusBackup("outside", map[string]any{"backoffRetryPolicy": map[string]any{"minRetryDuration": "1d"}})
	u.SetNamespace(other)
	require.NoError(t, env.Client.Create(ctx, u), "not selected: not validated")
	stored := fetch(t, other, u.GetName())
	assert.Equal(t, map[string]any{"minRetryDuration": "1d", "maxRetryTimes": int64(2), "retryTimeout": "30m"}, policy(t, stored, "spec"),
		"not selected: only the CRD's defaults")
}

func keysOf(m map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

func label(t *testing.T, ns, mode string) {
	t.Helper()
	n := &corev1.Namespace{}
	require.NoError(t, env.Client.Get(t.Context(), client.ObjectKey{Name: ns}, n))
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Labels[admissionLabel] = mode
	require.NoError(t, env.Client.Update(t.Context(), n))
}

// waitForCEL waits until both kinds of policy apply in ns.
func waitForCEL(t *testing.T, ns string) {
	t.Helper()
	waitForBoth(t, ns, "ValidatingAdmissionPolicy")
}

// waitForBoth waits until both halves of an admission apply in ns: a log Backup is
// defaulted and a malformed policy refused by the named kind of admission (each half takes
// effect on its own).
func waitForBoth(t *testing.T, ns, by string) {
	t.Helper()
	waitForAdmission(t, ns, by)
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p := celCorpusBackup("probe", nil)
		p.SetNamespace(ns)
		if err := env.Client.Create(ctx, p, client.DryRunAll); err != nil {
			return false, nil //nolint:nilerr // not yet: keep polling
		}
		_, found, _ := unstructured.NestedMap(p.Object, "spec", "backoffRetryPolicy")
		return found, nil
	})
	require.NoError(t, err, "defaulting never applied in %s", ns)
}

// waitForAdmission waits until a malformed policy is refused in ns by the named kind of
// admission (the API server sees namespace labels through an informer).
func waitForAdmission(t *testing.T, ns, by string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p := testenv.Empty(testenv.BackupGVK)
		p.SetNamespace(ns)
		p.SetName("probe")
		p.Object["spec"] = map[string]any{"backupMode": "log", "backoffRetryPolicy": map[string]any{"minRetryDuration": "soon"}}
		err := env.Client.Create(ctx, p, client.DryRunAll)
		return err != nil && strings.Contains(err.Error(), by), nil
	})
	require.NoError(t, err, "%s never applied in %s", by, ns)
}

// runCase sends a case to one namespace and returns what happened.
func runCase(t *testing.T, c celCase, ns string) outcome {
	t.Helper()
	ctx := t.Context()
	var err error
	var warnings []string
	cl := clientWithWarnings(t, &warnings)
	key := client.ObjectKey{Namespace: ns, Name: c.obj.GetName()}
	if c.update != nil {
		cur := testenv.Empty(c.obj.GroupVersionKind())
		require.NoError(t, env.Client.Get(ctx, key, cur))
		c.update(cur)
		err = cl.Update(ctx, cur)
	} else {
		o := c.obj.DeepCopy()
		o.SetNamespace(ns)
		err = cl.Create(ctx, o)
	}
	if err != nil {
		return outcome{err: err, warnings: warnings}
	}
	got := testenv.Empty(c.obj.GroupVersionKind())
	require.NoError(t, env.Client.Get(ctx, key, got))
	for _, f := range []string{"uid", "resourceVersion", "creationTimestamp", "managedFields", "namespace", "generation"} {
		unstructured.RemoveNestedField(got.Object, "metadata", f)
	}
	return outcome{stored: got.Object, warnings: warnings}
}

// messageDifference compares a refusal's field errors: every cause the webhook gave must
// appear, in the same words, in the policies' refusal. "" means they agree.
func messageDifference(webhookErr, policyErr error) string {
	var status apierrors.APIStatus
	if !errorsAs(webhookErr, &status) || status.Status().Details == nil {
		return "webhook refusal without field causes: " + webhookErr.Error()
	}
	var missing []string
	for _, cause := range status.Status().Details.Causes {
		want := cause.Field + ": " + cause.Message
		if !strings.Contains(policyErr.Error(), want) {
			missing = append(missing, want)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("webhook says %q; policies say %q", strings.Join(missing, "; "), policyErr.Error())
}

// TestCELModeStory: with admission done by the policies, a log Backup created without a
// policy gets the log defaults from the MutatingAdmissionPolicy, and a failure story beside
// TiDB Operator runs to its end: the ValidatingAdmissionPolicy lets every status write of
// TiDB Operator, the backup-manager and the reconciler through, and the Backup comes to
// rest.
func TestCELModeStory(t *testing.T) {
	startReconciler(t)
	op := operator(t)
	ctx := t.Context()
	installPolicies(t, defaults.Config{LogDefaults: defaults.Policy{MinRetryDuration: time.Second, MaxRetryTimes: 3, RetryTimeout: time.Minute},
		ReplaceSchemaDefaults: true}, op.Namespace)
	label(t, op.Namespace, "cel")
	waitForCEL(t, op.Namespace)
	op.Script("pitr", testenv.BRError, testenv.BRError, testenv.Succeed)
	b := richLogBackup(t, "pitr", map[string]any{})
	unstructured.RemoveNestedField(b.Object, "spec", "backoffRetryPolicy")
	require.NoError(t, op.Start(ctx, b))
	assert.Equal(t, map[string]any{"minRetryDuration": "1s", "maxRetryTimes": int64(3), "retryTimeout": "1m"},
		policy(t, fetch(t, op.Namespace, "pitr"), "spec"), "defaulted by the MutatingAdmissionPolicy from its params")
	eventually(t, op.Namespace, "pitr", 60*time.Second, "log-start recovers",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
	settled(t, op, map[string]int{"pitr": 2})
	assert.Equal(t, 3, op.Runs("pitr"))
}
