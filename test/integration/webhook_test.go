package integration

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// startWebhooks runs the server for one test and unregisters it afterwards.
func startWebhooks(t *testing.T) *testenv.Server {
	t.Helper()
	ctx := t.Context()
	s, err := env.StartServer(ctx, testLog(t), nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, testenv.UnregisterWebhooks(context.Background(), env.Client))
		assert.NoError(t, s.Stop())
	})
	return s
}

func namespace(t *testing.T) string {
	t.Helper()
	ns := testenv.Empty(schemaNamespace)
	ns.SetGenerateName("e2e-")
	require.NoError(t, env.Client.Create(t.Context(), ns))
	return ns.GetName()
}

func policy(t *testing.T, obj *unstructured.Unstructured, path ...string) map[string]any {
	t.Helper()
	p, _, err := unstructured.NestedMap(obj.Object, append(path, "backoffRetryPolicy")...)
	require.NoError(t, err)
	return p
}

func get(t *testing.T, gvk schema.GroupVersionKind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	obj := testenv.Empty(gvk)
	require.NoError(t, env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj))
	return obj
}

var logDefaults = map[string]any{"minRetryDuration": "30s", "maxRetryTimes": int64(5), "retryTimeout": "30m"}

func TestWebhooksThroughTheAPIServer(t *testing.T) {
	startWebhooks(t)
	ctx := t.Context()

	t.Run("kubectl apply of a log Backup without a policy gets the log defaults", func(t *testing.T) {
		ns := namespace(t)
		_, stderr, err := env.Kubectl(ctx, testenv.LogBackupYAML, "apply", "-n", ns, "-f", "-")
		require.NoError(t, err, stderr)
		assert.Contains(t, stderr, "Warning: spec.backoffRetryPolicy: defaulted all fields from the log-backup policy 30s / 5 / 30m")
		assert.Equal(t, logDefaults, policy(t, get(t, testenv.BackupGVK, ns, "pitr"), "spec"))
	})

	t.Run("an empty policy gets schema defaults first, then the log defaults, with a warning", func(t *testing.T) {
		ns := namespace(t)
		_, stderr, err := env.Kubectl(ctx, testenv.LogBackupYAML+"  backoffRetryPolicy: {}\n", "apply", "-n", ns, "-f", "-")
		require.NoError(t, err, stderr)
		assert.Contains(t, stderr, "Warning: spec.backoffRetryPolicy: replaced the CRD's snapshot defaults with the log-backup policy 30s / 5 / 30m")
		assert.Equal(t, logDefaults, policy(t, get(t, testenv.BackupGVK, ns, "pitr"), "spec"))
	})

	t.Run("the opt-out annotation keeps the schema defaults", func(t *testing.T) {
		ns := namespace(t)
		manifest := strings.Replace(testenv.LogBackupYAML, "  name: pitr\n", "  name: pitr\n  annotations:\n    tidb-backup-guard.io/keep-schema-defaults: \"true\"\n", 1)
		_, stderr, err := env.Kubectl(ctx, manifest+"  backoffRetryPolicy: {}\n", "apply", "-n", ns, "-f", "-")
		require.NoError(t, err, stderr)
		assert.NotContains(t, stderr, "Warning")
		assert.Equal(t, map[string]any{"minRetryDuration": "300s", "maxRetryTimes": int64(2), "retryTimeout": "30m"},
			policy(t, get(t, testenv.BackupGVK, ns, "pitr"), "spec"))
	})

	t.Run("a malformed policy is rejected with its field path", func(t *testing.T) {
		ns := namespace(t)
		bad := testenv.LogBackupYAML + "  backoffRetryPolicy:\n    minRetryDuration: \"30\"\n"
		_, stderr, err := env.Kubectl(ctx, bad, "apply", "-n", ns, "-f", "-")
		require.Error(t, err)
		assert.Contains(t, stderr, `spec.backoffRetryPolicy.minRetryDuration: Invalid value: "30": must be a Go duration such as 30s or 5m (missing unit)`)

		// The Go client sees a 422 Invalid with the cause's field path.
		obj, err := testenv.Object(bad)
		require.NoError(t, err)
		obj.SetNamespace(ns)
		err = env.Client.Create(ctx, obj)
		require.True(t, apierrors.IsInvalid(err), "%v", err)
		var status apierrors.APIStatus
		require.ErrorAs(t, err, &status)
		require.NotNil(t, status.Status().Details)
		require.Len(t, status.Status().Details.Causes, 1)
		assert.Equal(t, "spec.backoffRetryPolicy.minRetryDuration", status.Status().Details.Causes[0].Field)
		assert.True(t, apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKeyFromObject(obj), testenv.Empty(testenv.BackupGVK))))
	})

	t.Run("snapshot Backups are untouched", func(t *testing.T) {
		ns := namespace(t)
		snap := strings.Replace(testenv.LogBackupYAML, "backupMode: log", "backupMode: snapshot", 1)
		_, stderr, err := env.Kubectl(ctx, snap, "apply", "-n", ns, "-f", "-")
		require.NoError(t, err, stderr)
		assert.Nil(t, policy(t, get(t, testenv.BackupGVK, ns, "pitr"), "spec"))

		noMode := strings.Replace(strings.Replace(testenv.LogBackupYAML, "  backupMode: log\n", "", 1), "name: pitr", "name: defaulted", 1)
		_, stderr, err = env.Kubectl(ctx, noMode+"  backoffRetryPolicy: {}\n", "apply", "-n", ns, "-f", "-")
		require.NoError(t, err, stderr)
		got := get(t, testenv.BackupGVK, ns, "defaulted")
		mode, _, _ := unstructured.NestedString(got.Object, "spec", "backupMode")
		assert.Equal(t, "snapshot", mode, "the schema default applies")
		assert.Equal(t, map[string]any{"minRetryDuration": "300s", "maxRetryTimes": int64(2), "retryTimeout": "30m"}, policy(t, got, "spec"))
	})

	t.Run("a BackupSchedule's log template is defaulted, its snapshot template is not", func(t *testing.T) {
		ns := namespace(t)
		schedule := `
apiVersion: pingcap.com/v1alpha1
kind: BackupSchedule
metadata:
  name: daily
spec:
  schedule: "0 2 * * *"
  maxReservedTime: 72h
  backupTemplate:
    br: {cluster: basic}
    s3: {provider: aws, bucket: backups, prefix: snap}
    backoffRetryPolicy: {}
  logBackupTemplate:
    br: {cluster: basic}
    s3: {provider: aws, bucket: backups, prefix: log}
  compactBackupTemplate:
    maxRetryTimes: 6
`
		_, stderr, err := env.Kubectl(ctx, schedule, "apply", "-n", ns, "-f", "-")
		require.NoError(t, err, stderr)
		got := get(t, testenv.BackupScheduleGVK, ns, "daily")
		assert.Equal(t, logDefaults, policy(t, got, "spec", "logBackupTemplate"))
		assert.Equal(t, map[string]any{"minRetryDuration": "300s", "maxRetryTimes": int64(2), "retryTimeout": "30m"}, policy(t, got, "spec", "backupTemplate"))
		compact, _, _ := unstructured.NestedInt64(got.Object, "spec", "compactBackupTemplate", "maxRetryTimes")
		assert.Equal(t, int64(6), compact)

		bad := strings.Replace(schedule, "name: daily", "name: bad", 1) + "  logBackupTemplate:\n    backoffRetryPolicy: {retryTimeout: 1d}\n"
		bad = strings.Replace(bad, "  logBackupTemplate:\n    br: {cluster: basic}\n    s3: {provider: aws, bucket: backups, prefix: log}\n", "", 1)
		_, stderr, err = env.Kubectl(ctx, bad, "apply", "-n", ns, "-f", "-")
		require.Error(t, err)
		assert.Contains(t, stderr, `spec.logBackupTemplate.backoffRetryPolicy.retryTimeout: Invalid value: "1d"`)
	})

	t.Run("a log template is a log backup: the CRD's snapshot default is replaced, wrong modes are rejected", func(t *testing.T) {
		ns := namespace(t)
		schedule := `
apiVersion: pingcap.com/v1alpha1
kind: BackupSchedule
metadata:
  name: nomode
spec:
  schedule: "0 2 * * *"
  backupTemplate:
    br: {cluster: basic}
    s3: {provider: aws, bucket: backups, prefix: snap}
  logBackupTemplate:
    br: {cluster: basic}
    s3: {provider: aws, bucket: backups, prefix: log}
`
		_, stderr, err := env.Kubectl(ctx, schedule, "apply", "-n", ns, "-f", "-")
		require.NoError(t, err, stderr)
		assert.Contains(t, stderr, `Warning: spec.logBackupTemplate.backupMode: "snapshot" (the CRD's default) set to "log", since this template makes a log backup`)
		got := get(t, testenv.BackupScheduleGVK, ns, "nomode")
		mode, _, _ := unstructured.NestedString(got.Object, "spec", "logBackupTemplate", "backupMode")
		assert.Equal(t, "log", mode)
		mode, _, _ = unstructured.NestedString(got.Object, "spec", "backupTemplate", "backupMode")
		assert.Equal(t, "snapshot", mode, "the snapshot template keeps its default")

		// An UPDATE that makes the log template a snapshot again is rejected with the path.
		got.Object["spec"].(map[string]any)["logBackupTemplate"].(map[string]any)["backupMode"] = "snapshot"
		err = env.Client.Update(ctx, got)
		require.True(t, apierrors.IsInvalid(err), "%v", err)
		assert.Contains(t, err.Error(), `spec.logBackupTemplate.backupMode: Invalid value: "snapshot"`)

		// Opted out: the snapshot default stays, and validation rejects it.
		optOut := strings.Replace(schedule, "  name: nomode\n", "  name: optout\n  annotations:\n    tidb-backup-guard.io/keep-schema-defaults: \"true\"\n", 1)
		_, stderr, err = env.Kubectl(ctx, optOut, "apply", "-n", ns, "-f", "-")
		require.Error(t, err)
		assert.Contains(t, stderr, `spec.logBackupTemplate.backupMode: Invalid value: "snapshot": must be "log"`)

		// The mirror mistake: a periodic snapshot template that is a log backup.
		mirror := strings.Replace(strings.Replace(schedule, "name: nomode", "name: mirror", 1),
			"  backupTemplate:\n", "  backupTemplate:\n    backupMode: log\n", 1)
		_, stderr, err = env.Kubectl(ctx, mirror, "apply", "-n", ns, "-f", "-")
		require.Error(t, err)
		assert.Contains(t, stderr, `spec.backupTemplate.backupMode: Invalid value: "log": must not be "log"`)
	})

	t.Run("server-side dry-run shows the defaults and stores nothing", func(t *testing.T) {
		ns := namespace(t)
		stdout, stderr, err := env.Kubectl(ctx, testenv.LogBackupYAML, "apply", "-n", ns, "--dry-run=server", "-o", "json", "-f", "-")
		require.NoError(t, err, stderr)
		var out map[string]any
		require.NoError(t, json.Unmarshal([]byte(stdout), &out))
		p, _, _ := unstructured.NestedMap(out, "spec", "backoffRetryPolicy")
		assert.Equal(t, map[string]any{"minRetryDuration": "30s", "maxRetryTimes": float64(5), "retryTimeout": "30m"}, p)
		err = env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "pitr"}, testenv.Empty(testenv.BackupGVK))
		assert.True(t, apierrors.IsNotFound(err), "dry-run stored the object: %v", err)
	})
}

// A fully populated log Backup keeps every field it was created with: the only field the
// webhook adds is spec.backoffRetryPolicy.
func TestFullyPopulatedBackupKeepsEveryField(t *testing.T) {
	startWebhooks(t)
	ctx := t.Context()
	ns := namespace(t)

	sent := fixtureBackup(t)
	sent.SetNamespace(ns)
	want := sent.DeepCopy()
	require.NoError(t, env.Client.Create(ctx, sent))

	got := get(t, testenv.BackupGVK, ns, "pitr")
	assert.Equal(t, logDefaults, policy(t, got, "spec"))
	assertContains(t, "", roundTrip(t, want.Object), roundTrip(t, got.Object))
}

// roundTrip normalises numbers the way the API server's JSON does.
func roundTrip(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// assertContains checks that every field of want is in got with the same value.
func assertContains(t *testing.T, path string, want, got map[string]any) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !assert.True(t, ok, "field %s.%s was dropped", path, k) {
			continue
		}
		wm, wIsMap := w.(map[string]any)
		gm, gIsMap := g.(map[string]any)
		if wIsMap && gIsMap {
			assertContains(t, path+"."+k, wm, gm)
			continue
		}
		assert.Equal(t, w, g, "field %s.%s changed", path, k)
	}
}

// On UPDATE only a policy that changes is checked: an object created before the webhook
// with a bad policy stays writable, since TiDB Operator writes status through it.
func TestUpdateOfAnOldObjectWithABadPolicy(t *testing.T) {
	ctx := t.Context()
	ns := namespace(t)
	// Created while no webhook is registered.
	old, err := testenv.Object(testenv.LogBackupYAML + "  backoffRetryPolicy:\n    minRetryDuration: \"1d\"\n")
	require.NoError(t, err)
	old.SetNamespace(ns)
	require.NoError(t, env.Client.Create(ctx, old))

	startWebhooks(t)

	var warnings []string
	update := func(edit func(*unstructured.Unstructured)) error {
		obj := get(t, testenv.BackupGVK, ns, "pitr")
		edit(obj)
		warnings = nil
		return clientWithWarnings(t, &warnings).Update(ctx, obj)
	}
	require.NoError(t, update(func(o *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedField(o.Object, "Running", "status", "phase"))
	}), "a status write must pass")
	// The validating webhook's matchCondition keeps UPDATEs that leave the policy alone
	// away from it (the handler would allow them with a warning; see webhook tests).
	assert.Empty(t, warnings)

	err = update(func(o *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedField(o.Object, "2d", "spec", "backoffRetryPolicy", "minRetryDuration"))
	})
	require.True(t, apierrors.IsInvalid(err), "changing the policy to another bad value must fail: %v", err)

	require.NoError(t, update(func(o *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedField(o.Object, "1m", "spec", "backoffRetryPolicy", "minRetryDuration"))
	}), "fixing the policy must pass")
	assert.Empty(t, warnings)
}

// Requests are refused, not silently admitted, when the webhook is registered but down
// (failurePolicy Fail in the tests' configurations): the test that proves the API server
// really goes through our server.
func TestWebhookIsReallyCalled(t *testing.T) {
	s := startWebhooks(t)
	ctx := t.Context()
	ns := namespace(t)
	existing, err := testenv.Object(strings.Replace(testenv.LogBackupYAML, "name: pitr", "name: existing", 1))
	require.NoError(t, err)
	existing.SetNamespace(ns)
	require.NoError(t, env.Client.Create(ctx, existing))
	require.NoError(t, s.Stop())
	obj, err := testenv.Object(testenv.LogBackupYAML)
	require.NoError(t, err)
	obj.SetNamespace(ns)
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		err := env.Client.Create(ctx, obj.DeepCopy(), client.DryRunAll)
		return err != nil, nil
	})
	require.NoError(t, err)
	err = env.Client.Create(ctx, obj)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "failed calling webhook")

	// With the server down, status writes of existing Backups still pass: they leave the
	// policy alone, so the validating webhook's matchCondition never calls it.
	require.NoError(t, unstructured.SetNestedField(existing.Object, "Running", "status", "phase"))
	require.NoError(t, env.Client.Update(ctx, existing))
	// A policy change does need the server, and fails closed.
	require.NoError(t, unstructured.SetNestedField(existing.Object, "1m", "spec", "backoffRetryPolicy", "minRetryDuration"))
	err = env.Client.Update(ctx, existing)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "failed calling webhook")
	// Restart so the cleanup's Stop has something to stop.
	restarted, err := env.StartServer(ctx, testLog(t), nil)
	require.NoError(t, err)
	*s = *restarted
}
