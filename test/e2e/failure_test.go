//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/kernel"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/etcdtest"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// nodeIP is the node's address (hack/e2e/node.sh): pods reach a process of the node there.
const nodeIP = "10.99.0.1"

// A failed log start through real pods. TiDB Operator's controller-manager
// runs as a pod from its own chart; its backup Jobs run the real backup-manager, which runs
// BR as it runs it (played by test/e2e/br against the story's PD); kube-controller-manager's
// Job controller and garbage collector finish and delete the Jobs; BR and TiDB Operator
// reach PD by its Service name through the cluster's DNS (CoreDNS) and kube-proxy. Played
// here: BR (no TiKV runs) and PD (an etcd with the keys BR writes).
func TestFailedLogStartIsRetriedThroughRealPods(t *testing.T) {
	c := clusterClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), 12*time.Minute)
	defer cancel()
	installGuard(t, c)
	installTiDBOperator(t)

	const ns, backup = "retry", "pitr"
	_, err := tool(t, "", "kubectl", "create", "namespace", ns)
	require.NoError(t, err)
	// The backup Jobs' service account, as TiDB Operator's manual has users create it.
	_, err = tool(t, "", "kubectl", "apply", "-n", ns, "-f", filepath.Join(os.Getenv("E2E_ASSETS"), "tidb-operator-backup-rbac.yaml"))
	require.NoError(t, err)

	// PD: an etcd on the node's address, behind the Service TiDB Operator and BR dial,
	// basic-pd.retry:2379 (no selector: its EndpointSlice names the node).
	pd, pdClient := etcdtest.StartT(t, etcdtest.Options{Host: nodeIP})
	t.Logf("PD (etcd) at %s", pd.Endpoint)
	pdService(t, c, ns, "basic-pd")
	require.NoError(t, testenv.CreateReadyTidbCluster(ctx, c, ns, "basic", nil))

	t.Cleanup(func() {
		if t.Failed() {
			dump(t, ns)
		}
	})
	// TiKV's log backup advancer, played: while the task is registered, its global
	// checkpoint moves to now every second, which TiDB Operator's tracker reads.
	go advance(ctx, t, pdClient, backup)

	// The first log start fails in BR; the run after succeeds.
	_, err = pdClient.Put(ctx, etcdtest.BRScriptKey(backup), "br-error")
	require.NoError(t, err)
	_, err = tool(t, `apiVersion: pingcap.com/v1alpha1
kind: Backup
metadata: {name: `+backup+`}
spec:
  backupMode: log
  br: {cluster: basic}
  local:
    prefix: `+backup+`
    volume: {name: store, emptyDir: {}}
    volumeMount: {name: store, mountPath: /backup}
  backoffRetryPolicy: {minRetryDuration: 10s, maxRetryTimes: 3, retryTimeout: 30m}
`, "kubectl", "apply", "-n", ns, "-f", "-")
	require.NoError(t, err)

	// The first run: its pod's backup-manager writes BR's error, the Job controller fails
	// the Job, and the reconciler records the failure.
	jobs := map[types.UID]string{}
	var b *unstructured.Unstructured
	require.Eventually(t, func() bool {
		watchJobs(t, c, ns, jobs)
		b = getBackup(t, c, ns, backup)
		return len(records(b)) == 1
	}, 4*time.Minute, time.Second, "the failed log start is recorded")
	rec := records(b)[0]
	t.Logf("record: %v", rec)
	assert.EqualValues(t, 1, rec["retryNum"])
	assert.Contains(t, rec["originalReason"], "failed to connect to PD", "BR's error, as the backup-manager wrote it")

	// Handed back after the backoff: TiDB Operator deletes the failed Job and runs the
	// command again; the second run registers the task in PD and completes.
	require.Eventually(t, func() bool {
		watchJobs(t, c, ns, jobs)
		b = getBackup(t, c, ns, backup)
		phase, _, _ := unstructured.NestedString(b.Object, "status", "logSubCommandStatuses", "log-start", "phase")
		return phase == "Complete"
	}, 4*time.Minute, time.Second, "the log start runs again and completes")
	commitTs, _, _ := unstructured.NestedString(b.Object, "status", "commitTs")
	assert.NotEmpty(t, commitTs, "the backup-manager read the start version from the backupmeta BR wrote")
	task, err := pdClient.Get(ctx, "/tidb/br-stream/info/"+backup)
	require.NoError(t, err)
	assert.Len(t, task.Kvs, 1, "BR registered the task in PD")

	// TiDB Operator's tracker reads the task through the Service and records its checkpoint.
	require.Eventually(t, func() bool {
		b = getBackup(t, c, ns, backup)
		ts, _, _ := unstructured.NestedString(b.Object, "status", "logCheckpointTs")
		return ts != ""
	}, testenv.TiDBOperatorNoticesPD+30*time.Second, time.Second, "TiDB Operator reads the task's checkpoint from PD")

	// At rest: nobody writes the Backup again; one record, two Jobs, the last one Complete.
	rest, err := (&testenv.Env{Client: c}).Settle(ctx, ns, 10*time.Second, 2*time.Minute)
	require.NoError(t, err)
	b = rest[backup]
	assert.Len(t, records(b), 1, "one retry recorded")
	phase, _, _ := unstructured.NestedString(b.Object, "status", "phase")
	assert.Equal(t, "Running", phase)
	watchJobs(t, c, ns, jobs)
	t.Logf("Jobs seen: %v", jobs)
	assert.Len(t, jobs, 2, "one Job per run")
	var job batchv1.Job
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: testenv.JobName(backup)}, &job))
	assert.EqualValues(t, 1, job.Status.Succeeded, "the second Job succeeded")
}

// advance plays the advancer for task until ctx ends.
func advance(ctx context.Context, t *testing.T, pd *clientv3.Client, task string) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		if got, err := pd.Get(ctx, "/tidb/br-stream/info/"+task, clientv3.WithCountOnly()); err != nil || got.Count == 0 {
			continue
		}
		if err := etcdtest.PutGlobalCheckpoint(ctx, pd, task, kernel.TSO(time.Now())); err != nil && ctx.Err() == nil {
			t.Logf("advancer: %v", err)
		}
	}
}

// dump logs what a failed story needs to be read: the Backup, the Jobs' pods' logs, and
// TiDB Operator's and the server's logs.
func dump(t *testing.T, ns string) {
	_, _ = tool(t, "", "kubectl", "get", "backup,job,pod", "-n", ns, "-o", "yaml")
	_, _ = tool(t, "", "kubectl", "logs", "-n", ns, "-l", "app.kubernetes.io/component=backup", "--all-containers", "--prefix", "--tail", "60")
	_, _ = tool(t, "", "kubectl", "logs", "-n", namespace, "-l", "app.kubernetes.io/instance=tidb-operator", "--tail", "150")
	_, _ = tool(t, "", "kubectl", "logs", "-n", namespace, "-l", "app.kubernetes.io/instance="+release, "--prefix", "--tail", "60")
}

// watchJobs adds the log-start Jobs of ns to seen (UID: how it ended, "" while running).
func watchJobs(t *testing.T, c client.Client, ns string, seen map[types.UID]string) {
	t.Helper()
	var list batchv1.JobList
	require.NoError(t, c.List(t.Context(), &list, client.InNamespace(ns)))
	for _, j := range list.Items {
		end := ""
		for _, cond := range j.Status.Conditions {
			if (cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) && cond.Status == corev1.ConditionTrue {
				end = string(cond.Type)
			}
		}
		if seen[j.UID] != end {
			t.Logf("Job %s (%s): %q", j.Name, j.UID, end)
		}
		seen[j.UID] = end
	}
}

func getBackup(t *testing.T, c client.Client, ns, name string) *unstructured.Unstructured {
	t.Helper()
	b := testenv.Empty(backupGVK)
	require.NoError(t, c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, b))
	return b
}

// records are the Backup's status.backoffRetryStatus entries.
func records(b *unstructured.Unstructured) []map[string]any {
	list, _, _ := unstructured.NestedSlice(b.Object, "status", "backoffRetryStatus")
	out := make([]map[string]any, 0, len(list))
	for _, r := range list {
		if m, ok := r.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// pdService is PD's client Service as TiDB Operator names it, sending to the node's
// address, where the story's etcd listens on PD's port.
func pdService(t *testing.T, c client.Client, ns, name string) {
	t.Helper()
	port := int32(etcdtest.PDClientPort)
	require.NoError(t, c.Create(t.Context(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "client", Port: port}}},
	}))
	require.NoError(t, c.Create(t.Context(), &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-node",
			Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{nodeIP}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("client"), Port: ptr.To(port)}},
	}))
}

// installTiDBOperator installs TiDB Operator's own chart (its defaults: the controller-
// manager only, cluster-scoped) with the images hack/e2e/assets.sh built under its names.
func installTiDBOperator(t *testing.T) {
	t.Helper()
	start := time.Now()
	_, err := tool(t, "", "helm", "install", "tidb-operator", filepath.Join(os.Getenv("E2E_ASSETS"), "tidb-operator-chart"),
		"--namespace", namespace, "--create-namespace", "--wait", "--timeout", "4m",
		"--set", "controllerManager.logLevel=4")
	require.NoError(t, err)
	t.Logf("helm install tidb-operator --wait took %s", time.Since(start).Round(time.Millisecond))
}
