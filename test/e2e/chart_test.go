//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	release   = "guard"
	namespace = "tidb-admin"
	lease     = "guard-tidb-backup-guard-reconciler"
)

var backupGVK = schema.GroupVersionKind{Group: "pingcap.com", Version: "v1alpha1", Kind: "Backup"}

// tool runs one of the cluster's binaries (kubectl, helm) as a user would, with stdin.
func tool(t *testing.T, stdin, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(os.Getenv("E2E_ASSETS"), name), args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	t.Logf("$ %s %s\n%s", name, strings.Join(args, " "), out)
	return string(out), err
}

func logBackup(name, policy string) string {
	return `apiVersion: pingcap.com/v1alpha1
kind: Backup
metadata: {name: ` + name + `}
spec:
  backupMode: log
  br: {cluster: basic}
  s3: {provider: aws, bucket: backups, prefix: log}
` + policy
}

// The chart as users install it (its defaults: self-signed certificates,
// 2 replicas, leader election, the restricted security context), the image as hack/image
// built it, on a node that runs its pods.
func TestChartOnARealNode(t *testing.T) {
	c := clusterClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	installGuard(t, c)

	var dep appsv1.Deployment
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "guard-tidb-backup-guard"}, &dep))
	assert.EqualValues(t, 2, dep.Status.AvailableReplicas, "both replicas Available")
	pods := &corev1.PodList{}
	require.NoError(t, c.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabels{"app.kubernetes.io/instance": release}))
	require.Len(t, pods.Items, 2)
	for _, p := range pods.Items {
		sc := p.Spec.Containers[0].SecurityContext
		require.NotNil(t, sc)
		assert.True(t, *sc.ReadOnlyRootFilesystem, "%s: read-only root", p.Name)
		assert.EqualValues(t, 65532, *p.Spec.SecurityContext.RunAsUser, "%s: the image's user", p.Name)
		assert.NotEmpty(t, p.Status.PodIP, "%s runs on the pod network", p.Name)
	}

	// The API server calls the webhooks through the chart's Service (kube-proxy sends it
	// to a pod): a log Backup without a policy gets the log defaults, a malformed one is
	// refused with its field path.
	_, err := tool(t, "", "kubectl", "create", "namespace", "demo")
	require.NoError(t, err)
	out, err := tool(t, logBackup("pitr", ""), "kubectl", "apply", "-n", "demo", "-f", "-")
	require.NoError(t, err)
	assert.Contains(t, out, "defaulted all fields from the log-backup policy 30s / 5 / 30m")
	assertPolicy(t, c, "pitr")
	out, err = tool(t, logBackup("typo", "  backoffRetryPolicy: {minRetryDuration: \"30\"}\n"), "kubectl", "apply", "-n", "demo", "-f", "-")
	require.Error(t, err)
	assert.Contains(t, out, `spec.backoffRetryPolicy.minRetryDuration: Invalid value: "30": must be a Go duration such as 30s or 5m (missing unit)`)

	// Delete the leader's pod: the other replica takes the Lease, and the webhook keeps
	// answering (the Service now has one ready endpoint until the new pod is ready).
	leader := holder(t, c)
	require.NotEmpty(t, leader)
	_, err = tool(t, "", "kubectl", "delete", "pod", "-n", namespace, leader, "--wait=false")
	require.NoError(t, err)
	var next string
	require.Eventually(t, func() bool { next = holder(t, c); return next != "" && next != leader }, 60*time.Second, 200*time.Millisecond,
		"another replica takes the Lease")
	t.Logf("leader %s, then %s", leader, next)
	_, err = tool(t, logBackup("pitr2", ""), "kubectl", "apply", "-n", "demo", "-f", "-")
	require.NoError(t, err)
	assertPolicy(t, c, "pitr2")

	// At rest: nobody keeps writing the Backups.
	before := versions(t, c)
	time.Sleep(5 * time.Second)
	assert.Equal(t, before, versions(t, c), "the Backups stop changing")
}

// clusterClient is a client of the node's cluster (make e2e sets KUBECONFIG).
func clusterClient(t *testing.T) client.Client {
	t.Helper()
	for _, v := range []string{"E2E_ASSETS", "E2E_ROOT", "KUBECONFIG"} {
		require.NotEmpty(t, os.Getenv(v), "%s: run through make e2e", v)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	require.NoError(t, err)
	c, err := client.New(cfg, client.Options{})
	require.NoError(t, err)
	return c
}

// installGuard installs TiDB Operator's CRDs and the chart with its defaults, the image
// set to the one hack/image built, once: a later test finds the release and uses it.
func installGuard(t *testing.T, c client.Client) {
	t.Helper()
	var dep appsv1.Deployment
	if c.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: "guard-tidb-backup-guard"}, &dep) == nil {
		return
	}
	_, err := tool(t, "", "kubectl", "apply", "--server-side", "-f", filepath.Join(os.Getenv("E2E_ASSETS"), "tidb-operator-crds")+"/")
	require.NoError(t, err)
	start := time.Now()
	_, err = tool(t, "", "helm", "install", release, filepath.Join(os.Getenv("E2E_ROOT"), "charts", "tidb-backup-guard"),
		"--namespace", namespace, "--create-namespace", "--wait", "--timeout", "4m",
		"--set", "image.repository=docker.io/library/tidb-backup-guard", "--set", "image.tag=e2e", "--set", "image.pullPolicy=Never")
	if err != nil {
		_, _ = tool(t, "", "kubectl", "describe", "pods", "-n", namespace, "-l", "app.kubernetes.io/instance="+release)
		_, _ = tool(t, "", "kubectl", "logs", "-n", namespace, "-l", "app.kubernetes.io/instance="+release, "--prefix", "--tail", "60")
	}
	require.NoError(t, err)
	t.Logf("helm install --wait took %s", time.Since(start).Round(time.Millisecond))
}

func assertPolicy(t *testing.T, c client.Client, name string) {
	t.Helper()
	b := &unstructured.Unstructured{}
	b.SetGroupVersionKind(backupGVK)
	require.NoError(t, c.Get(t.Context(), client.ObjectKey{Namespace: "demo", Name: name}, b))
	p, _, _ := unstructured.NestedMap(b.Object, "spec", "backoffRetryPolicy")
	assert.Equal(t, map[string]any{"minRetryDuration": "30s", "maxRetryTimes": int64(5), "retryTimeout": "30m"}, p, name)
}

// holder is the pod that holds the reconciler's Lease ("" while none does).
func holder(t *testing.T, c client.Client) string {
	t.Helper()
	var l coordinationv1.Lease
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: lease}, &l); err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return strings.SplitN(*l.Spec.HolderIdentity, "_", 2)[0]
}

func versions(t *testing.T, c client.Client) map[string]string {
	t.Helper()
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(backupGVK.GroupVersion().WithKind("BackupList"))
	require.NoError(t, c.List(t.Context(), list, client.InNamespace("demo")))
	out := map[string]string{}
	for _, b := range list.Items {
		out[b.GetName()] = b.GetResourceVersion()
	}
	return out
}
