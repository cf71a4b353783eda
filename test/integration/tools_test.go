package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/cmd/tidb-backup-guard/app"
	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
	"github.com/tidb-backup-guard/tidb-backup-guard/defaults/audit"
	"github.com/tidb-backup-guard/tidb-backup-guard/defaults/nspolicy"
	explainer "github.com/tidb-backup-guard/tidb-backup-guard/reconciler/explain"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// runTool runs the command line in process, as a user would with the Env's kubeconfig.
func runTool(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = app.Main(append(args, "--kubeconfig", env.Kubeconfig), &out, &errOut)
	return out.String(), errOut.String(), code
}

func explainJSON(t *testing.T, ns, name string, extra ...string) *explainer.Explanation {
	t.Helper()
	out, errOut, code := runTool(t, append([]string{"explain", ns + "/" + name, "-o", "json"}, extra...)...)
	require.Equal(t, 0, code, "explain failed: %s", errOut)
	x := &explainer.Explanation{}
	require.NoError(t, json.Unmarshal([]byte(out), x), out)
	return x
}

// TestExplainAgreesWithTheServer follows two failure stories beside the real TiDB
// Operator and, at each point, compares explain's answer with what the server did:
// the retry it scheduled (the record it wrote), the limit it gave up on, the rest after.
func TestExplainAgreesWithTheServer(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	startReconciler(t)
	op, pd := realCluster(t)
	ctx := t.Context()
	// 3s, 6s, 12s: retry 3 starts 21s after the first failure, within 1m, so the count
	// trips first.
	policy := map[string]any{"minRetryDuration": "3s", "maxRetryTimes": int64(3), "retryTimeout": "1m"}
	op.Script("pitr", testenv.BRError, testenv.Succeed)
	op.Script("doomed", testenv.BRError, testenv.BRError)
	require.NoError(t, op.Start(ctx, richLogBackup(t, "pitr", policy)))
	require.NoError(t, op.Start(ctx, richLogBackup(t, "doomed", map[string]any{"minRetryDuration": "1s", "maxRetryTimes": int64(1), "retryTimeout": "1m"})))

	// Point 1: the server recorded the failure and scheduled retry 1.
	b := eventually(t, op.Namespace, "pitr", 30*time.Second, "failure recorded", func(b *unstructured.Unstructured) bool {
		recs := recordsOf(t, b)
		return len(recs) == 1 && recs[0].RealRetryAt == ""
	})
	x := explainJSON(t, op.Namespace, "pitr")
	rec := firstRecord(t, b)
	require.Equal(t, retry.ActWait, x.Decision.Action, "explain: %+v", x)
	require.NotNil(t, x.Decision.At)
	assert.True(t, ts(t, rec.ExpectedRetryAt).Equal(*x.Decision.At), "explain's next retry (%s) is the one the server scheduled (%s)",
		x.Decision.At, rec.ExpectedRetryAt)
	assert.Contains(t, x.Next, "retry 1 of log-start starts at "+rec.ExpectedRetryAt)
	require.NotNil(t, x.Limit)
	assert.Equal(t, defaults.FieldMaxRetryTimes, x.Limit.Limit)
	assert.Equal(t, int64(3), x.Limit.AfterRetry)
	require.NotNil(t, x.Episode)
	require.Len(t, x.Episode.Timeline, 1)
	assert.Equal(t, "retry pending", x.Episode.Timeline[0].Result)
	assert.Equal(t, "log-start", x.Command.Name)
	assert.Equal(t, "Failed", x.Command.Phase)
	for _, f := range x.Policy.Fields {
		assert.Equal(t, "spec", f.Source, f.Name)
	}
	if text, _, code := runTool(t, "explain", op.Namespace+"/pitr"); code == 0 {
		t.Logf("explain output while a retry is pending:\n%s", text)
	}

	// Point 2: doomed spent its one retry: the server gave up on maxRetryTimes, and explain
	// says nothing more will happen, and why.
	d := eventually(t, op.Namespace, "doomed", 30*time.Second, "doomed gives up", gaveUp)
	xd := explainJSON(t, op.Namespace, "doomed")
	assert.Equal(t, retry.ActNone, xd.Decision.Action)
	assert.Contains(t, xd.Next, "log-start gave up")
	assert.Contains(t, xd.Next, retry.ReasonRetryLimitExceeded)
	assert.Equal(t, entryFailedReason(d), retry.ReasonRetryLimitExceeded)
	require.NotNil(t, xd.Episode)
	assert.True(t, xd.Episode.GaveUp)
	assert.Equal(t, "gave up here", xd.Episode.Timeline[len(xd.Episode.Timeline)-1].Result)

	// Point 3: pitr recovered; the server closed the episode and explain sees a healthy
	// backup with nothing to do.
	eventually(t, op.Namespace, "pitr", 30*time.Second, "pitr recovers",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
	backups := settled(t, op, map[string]int{"pitr": 1, "doomed": 2})
	x = explainJSON(t, op.Namespace, "pitr")
	assert.Equal(t, retry.ActNone, x.Decision.Action)
	assert.Contains(t, x.Next, "nothing: log-start is Complete and nothing failed")
	assert.Nil(t, x.Episode)
	// With the kernel probe: what PD holds for the task BR registered.
	x = explainJSON(t, op.Namespace, "pitr", "--kernel-probe", app.KernelProbePDEtcd, "--kernel-pd-endpoint", pd.Endpoints()[0])
	commitTs, _, _ := unstructured.NestedString(backups["pitr"].Object, "status", "commitTs")
	require.NotNil(t, x.Kernel)
	assert.Empty(t, x.Kernel.Error)
	assert.Equal(t, fmt.Sprintf("task pitr (start ts %s) exists and runs", commitTs), x.Kernel.Summary)
	assert.Equal(t, retry.ActNone, x.Decision.Action)

	// The text form, as a person reads it; and explain wrote nothing.
	out, errOut, code := runTool(t, "explain", "doomed", "-n", op.Namespace)
	require.Equal(t, 0, code, errOut)
	t.Logf("explain output:\n%s", out)
	for _, want := range []string{"Backup:", "Command:  log-start, Failed", "Policy:", "Episode:  log-start, gave up, 2 records", "Decision:  None", "Next:"} {
		assert.Contains(t, strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " "))
	}
	for name, before := range backups {
		assert.Equal(t, before.GetResourceVersion(), fetch(t, op.Namespace, name).GetResourceVersion(), "explain must not write %s", name)
	}

	// The kubectl plugin: the same binary under the plugin's name, found on PATH by
	// kubectl, answers as the command does.
	plugin := buildPlugin(t)
	cmd := exec.CommandContext(ctx, filepath.Join(env.AssetsDir, "kubectl"), "backup-guard", "explain", op.Namespace+"/doomed", "-o", "json")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig, "PATH="+filepath.Dir(plugin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	var pout, perr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &pout, &perr
	require.NoError(t, cmd.Run(), perr.String())
	viaKubectl := &explainer.Explanation{}
	require.NoError(t, json.Unmarshal(pout.Bytes(), viaKubectl), pout.String())
	xd = explainJSON(t, op.Namespace, "doomed")
	viaKubectl.At, xd.At = time.Time{}, time.Time{}
	assert.Equal(t, xd, viaKubectl)
	// kubectl passes the plugin's flags and exit code through.
	cmd = exec.CommandContext(ctx, filepath.Join(env.AssetsDir, "kubectl"), "backup-guard", "audit", "-n", op.Namespace, "--log-backup-max-retries", "x")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig, "PATH="+filepath.Dir(plugin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	perr.Reset()
	cmd.Stderr = &perr
	err := cmd.Run()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr)
	assert.Equal(t, 2, exitErr.ExitCode(), perr.String())
	assert.Contains(t, perr.String(), "kubectl backup-guard")
}

var pluginOnce = sync.OnceValues(func() (string, error) {
	dir := filepath.Join(env.Dir, "plugin") // removed with the control plane's files
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, app.PluginName)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tidb-backup-guard")
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// buildPlugin builds the command as kubectl-backup_guard.
func buildPlugin(t *testing.T) string {
	t.Helper()
	bin, err := pluginOnce()
	require.NoError(t, err)
	return bin
}

// TestAuditFindsAndFixes audits objects created with no webhook in the way, as a cluster
// that had Backups before tidb-backup-guard was installed does.
func TestAuditFindsAndFixes(t *testing.T) {
	ctx := t.Context()
	require.NoError(t, env.WaitForNoWebhooks(ctx))
	ns := namespace(t)
	create := func(name string, mutate func(u *unstructured.Unstructured)) *unstructured.Unstructured {
		u := fixtureBackup(t)
		u.SetNamespace(ns)
		u.SetName(name)
		unstructured.RemoveNestedField(u.Object, "status")
		mutate(u)
		require.NoError(t, env.Client.Create(ctx, u))
		return fetch(t, ns, name)
	}
	setPolicy := func(p map[string]any) func(*unstructured.Unstructured) {
		return func(u *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(u.Object, p, "spec", "backoffRetryPolicy"))
		}
	}
	noPolicy := func(u *unstructured.Unstructured) {
		unstructured.RemoveNestedField(u.Object, "spec", "backoffRetryPolicy")
	}
	before := map[string]*unstructured.Unstructured{
		"missing": create("missing", noPolicy),
		// An empty policy object: the API server fills the CRD's snapshot defaults.
		"schema":    create("schema", setPolicy(map[string]any{})),
		"malformed": create("malformed", setPolicy(map[string]any{"minRetryDuration": "1d", "maxRetryTimes": int64(3)})),
		"opted-out": create("opted-out", func(u *unstructured.Unstructured) {
			setPolicy(map[string]any{})(u)
			u.SetAnnotations(map[string]string{defaults.KeepSchemaDefaultsAnnotation: "true"})
		}),
		"good": create("good", setPolicy(map[string]any{"minRetryDuration": "1m", "maxRetryTimes": int64(3), "retryTimeout": "1h"})),
		"snapshot": create("snapshot", func(u *unstructured.Unstructured) {
			noPolicy(u)
			require.NoError(t, unstructured.SetNestedField(u.Object, "snapshot", "spec", "backupMode"))
		}),
	}
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
  logBackupTemplate:
    backupMode: log
    br: {cluster: basic}
    s3: {provider: aws, bucket: backups, prefix: log}
`
	_, stderr, err := env.Kubectl(ctx, schedule, "create", "-n", ns, "-f", "-")
	require.NoError(t, err, stderr)
	scheduleBefore := get(t, testenv.BackupScheduleGVK, ns, "daily")
	// tidb-operator#6320: its maxBackups clean-up would delete its log backup.
	deleting := `
apiVersion: pingcap.com/v1alpha1
kind: BackupSchedule
metadata:
  name: weekly
spec:
  schedule: "0 3 * * 0"
  maxBackups: 4
  backupTemplate:
    br: {cluster: basic}
    s3: {provider: aws, bucket: backups, prefix: snap}
  logBackupTemplate:
    backupMode: log
    backoffRetryPolicy: {minRetryDuration: 30s, maxRetryTimes: 5, retryTimeout: 30m}
    br: {cluster: basic}
    s3: {provider: aws, bucket: backups, prefix: log}
`
	_, stderr, err = env.Kubectl(ctx, deleting, "create", "-n", ns, "-f", "-")
	require.NoError(t, err, stderr)
	const notFixable = "not fixable: set spec.maxReservedTime (how long to keep backups is yours to choose)"

	type row struct{ Kind, Name, Problem, Fix, Result string }
	rows := func(out string) []row {
		var fs []audit.Finding
		require.NoError(t, json.Unmarshal([]byte(out), &fs), out)
		var rs []row
		for _, f := range fs {
			rs = append(rs, row{f.Kind, f.Name, f.Problem, f.Fix, f.Result})
		}
		return rs
	}
	out, errOut, code := runTool(t, "audit", "-n", ns, "-o", "json")
	assert.Equal(t, 1, code, "findings make audit fail: %s", errOut)
	assert.ElementsMatch(t, []row{
		{"Backup", "missing", audit.ProblemMissing, "30s / 5 / 30m", ""},
		{"Backup", "schema", audit.ProblemSchemaDefaults, "30s / 5 / 30m", ""},
		{"Backup", "malformed", audit.ProblemMalformed, "", ""},
		{"BackupSchedule", "daily", audit.ProblemMissing, "30s / 5 / 30m", ""},
		{"BackupSchedule", "weekly", audit.ProblemDeletesLogBackup, "", ""},
	}, rows(out))

	// --dry-run: the API server runs the apply and stores nothing.
	out, errOut, code = runTool(t, "audit", "-n", ns, "--fix", "--dry-run", "-o", "json")
	assert.Equal(t, 1, code, errOut)
	assert.ElementsMatch(t, []row{
		{"Backup", "missing", audit.ProblemMissing, "30s / 5 / 30m", "would fix"},
		{"Backup", "schema", audit.ProblemSchemaDefaults, "30s / 5 / 30m", "would fix"},
		{"Backup", "malformed", audit.ProblemMalformed, "", "not fixable: edit the policy"},
		{"BackupSchedule", "daily", audit.ProblemMissing, "30s / 5 / 30m", "would fix"},
		{"BackupSchedule", "weekly", audit.ProblemDeletesLogBackup, "", notFixable},
	}, rows(out))
	for name, b := range before {
		assert.Equal(t, b.GetResourceVersion(), fetch(t, ns, name).GetResourceVersion(), "dry run changed %s", name)
	}

	// --fix, in the table form.
	out, errOut, code = runTool(t, "audit", "-n", ns, "--fix")
	assert.Equal(t, 1, code, "the malformed policy is left: %s", errOut)
	t.Logf("audit --fix output:\n%s", out)
	assert.Regexp(t, `Backup\s+`+ns+`\s+schema\s+spec.backoffRetryPolicy\s+schema-defaults\s+30s / 5 / 30m\s+.*fixed`, out)

	logDefaults := map[string]any{"minRetryDuration": "30s", "maxRetryTimes": int64(5), "retryTimeout": "30m"}
	for name, b := range before {
		after := fetch(t, ns, name)
		switch name {
		case "missing", "schema":
			assert.Equal(t, logDefaults, policy(t, after, "spec"), name)
			assertOnlyPolicyChanged(t, b, after, "spec", "backoffRetryPolicy")
			assert.Equal(t, []string{"f:spec/f:backoffRetryPolicy/f:maxRetryTimes", "f:spec/f:backoffRetryPolicy/f:minRetryDuration",
				"f:spec/f:backoffRetryPolicy/f:retryTimeout"}, ownedBy(t, after, audit.FieldManager), name)
		default:
			assert.Equal(t, b.GetResourceVersion(), after.GetResourceVersion(), "%s must be left alone", name)
		}
	}
	scheduleAfter := get(t, testenv.BackupScheduleGVK, ns, "daily")
	assert.Equal(t, logDefaults, policy(t, scheduleAfter, "spec", "logBackupTemplate"))
	assertOnlyPolicyChanged(t, scheduleBefore, scheduleAfter, "spec", "logBackupTemplate", "backoffRetryPolicy")

	// Fixed objects are no longer findings; once the malformed policy is corrected by its
	// owner, audit passes.
	out, _, code = runTool(t, "audit", "-n", ns, "-o", "json")
	assert.Equal(t, 1, code)
	assert.ElementsMatch(t, []row{{"Backup", "malformed", audit.ProblemMalformed, "", ""},
		{"BackupSchedule", "weekly", audit.ProblemDeletesLogBackup, "", ""}}, rows(out))
	assert.Contains(t, out, "tidb-operator#6320", "the detail names the upstream issue")
	m := fetch(t, ns, "malformed")
	require.NoError(t, unstructured.SetNestedField(m.Object, "1h", "spec", "backoffRetryPolicy", "minRetryDuration"))
	require.NoError(t, env.Client.Update(ctx, m))
	w := get(t, testenv.BackupScheduleGVK, ns, "weekly")
	require.NoError(t, unstructured.SetNestedField(w.Object, "720h", "spec", "maxReservedTime"))
	require.NoError(t, env.Client.Update(ctx, w))
	out, errOut, code = runTool(t, "audit", "-n", ns)
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "No problems found.\n", out)

	// A stale read is never applied: the resourceVersion audited is a precondition.
	// "snapshot" becomes a log backup without a policy; audit finds it; then someone
	// changes it before the fix is applied.
	snap := fetch(t, ns, "snapshot")
	require.NoError(t, unstructured.SetNestedField(snap.Object, "log", "spec", "backupMode"))
	require.NoError(t, env.Client.Update(ctx, snap))
	findings, err := audit.Audit(ctx, env.Client, ns, defaults.DefaultConfig())
	require.NoError(t, err)
	require.Len(t, findings, 1)
	require.Equal(t, "snapshot", findings[0].Name)
	snap = fetch(t, ns, "snapshot")
	snap.SetLabels(map[string]string{"touched": "yes"})
	require.NoError(t, env.Client.Update(ctx, snap))
	assert.False(t, audit.Fix(ctx, env.Client, &findings[0], false))
	assert.Contains(t, findings[0].Result, "the object changed since it was read")
	_, found, _ := unstructured.NestedMap(fetch(t, ns, "snapshot").Object, "spec", "backoffRetryPolicy")
	assert.False(t, found, "nothing applied on a stale read")

	_, err = env.Settle(ctx, ns, testenv.SettleHold, 30*time.Second)
	require.NoError(t, err)
}

// assertOnlyPolicyChanged compares two versions of an object with the policy at path and
// the metadata the API server keeps removed: nothing else may differ.
func assertOnlyPolicyChanged(t *testing.T, before, after *unstructured.Unstructured, path ...string) {
	t.Helper()
	strip := func(u *unstructured.Unstructured) map[string]any {
		c := u.DeepCopy()
		unstructured.RemoveNestedField(c.Object, path...)
		for _, f := range []string{"resourceVersion", "managedFields", "generation"} {
			unstructured.RemoveNestedField(c.Object, "metadata", f)
		}
		return c.Object
	}
	assert.Equal(t, strip(before), strip(after), "%s: only %s may change", before.GetName(), strings.Join(path, "."))
}

// ownedBy lists the leaf fields a field manager owns.
func ownedBy(t *testing.T, u *unstructured.Unstructured, manager string) []string {
	t.Helper()
	var out []string
	for _, mf := range u.GetManagedFields() {
		if mf.Manager != manager || mf.FieldsV1 == nil {
			continue
		}
		var tree map[string]any
		require.NoError(t, json.Unmarshal(mf.FieldsV1.GetRawBytes(), &tree))
		var walk func(prefix string, m map[string]any)
		walk = func(prefix string, m map[string]any) {
			for k, v := range m {
				if k == "." {
					continue
				}
				child, _ := v.(map[string]any)
				p := strings.TrimPrefix(prefix+"/"+k, "/")
				if len(child) == 0 {
					out = append(out, p)
					continue
				}
				walk(p, child)
			}
		}
		walk("", tree)
	}
	slices.Sort(out)
	return out
}

// writeCounter counts the requests a server makes that could change something, other
// than Events.
type writeCounter struct {
	mu     sync.Mutex
	writes []string
	all    int // every request, so that a transport that is not in the path shows
}

func (w *writeCounter) wrap(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			w.mu.Lock()
			w.all++
			w.mu.Unlock()
			if req.Method != http.MethodGet && req.Method != http.MethodHead && !strings.Contains(req.URL.Path, "/events") {
				w.mu.Lock()
				w.writes = append(w.writes, req.Method+" "+req.URL.Path)
				w.mu.Unlock()
			}
			return rt.RoundTrip(req)
		})
	}
	return c
}

func (w *writeCounter) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestShadowModeWritesNothing runs a shadow-mode server through a whole failure story:
// alone first (it reports what it would do, and the failed Backup stays as it is), then
// beside an enforcing server that carries the story to its end. Every request the shadow
// server makes is counted: none may write, except its Events.
func TestShadowModeWritesNothing(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	counter := &writeCounter{}
	port, err := testenv.FreePort()
	require.NoError(t, err)
	shadow, err := env.RunApp(t.Context(), testLog(t), scoped(t, func(o *app.Options) {
		o.Components = []string{app.ComponentReconciler}
		o.Mode = app.ReconcilerModeShadow
		o.MetricsBindAddress = fmt.Sprintf("127.0.0.1:%d", port)
	}), app.WithRestConfig(counter.wrap(env.Config)))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, shadow.Stop()) })
	op := operator(t)
	ctx := t.Context()
	op.Script("pitr", testenv.BRError, testenv.BRError, testenv.Succeed)
	require.NoError(t, op.Start(ctx, richLogBackup(t, "pitr", quickPolicy)))

	// Alone: it says it would record the failure, and does not.
	require.Eventually(t, func() bool { return eventReasons(t, op.Namespace, "pitr")["WouldRecordFailure"] == 1 },
		30*time.Second, 50*time.Millisecond, "events: %v", eventReasons(t, op.Namespace, "pitr"))
	note := eventNoteOf(t, op.Namespace, "Backup", "pitr", "WouldRecordFailure")
	assert.Contains(t, note, "shadow mode, nothing was changed: would record the failure: retry 1 of 5 in 1s")
	time.Sleep(3 * time.Second) // past the 1s backoff: an enforcing server would have retried by now
	b := fetch(t, op.Namespace, "pitr")
	assert.Empty(t, recordsOf(t, b), "shadow mode records nothing")
	assert.Equal(t, "Failed", entryPhase(b))
	job := &batchv1.Job{}
	require.NoError(t, env.Client.Get(ctx, client.ObjectKey{Namespace: op.Namespace, Name: testenv.JobName("pitr")}, job),
		"shadow mode deletes no Job")
	assert.Nil(t, job.DeletionTimestamp)
	assert.Equal(t, 1, op.Runs("pitr"))
	assert.Equal(t, 1, eventReasons(t, op.Namespace, "pitr")["WouldRecordFailure"], "a decision that holds is reported once")
	assert.Contains(t, scrape(t, port),
		fmt.Sprintf(`tidb_backup_guard_shadow_decisions_total{action="RecordFailure",command="log-start",namespace=%q} 1`, op.Namespace))

	// Beside an enforcing server: the story runs to its end; the shadow server still writes
	// nothing.
	startReconciler(t)
	eventually(t, op.Namespace, "pitr", 60*time.Second, "log-start recovers",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
	settled(t, op, map[string]int{"pitr": 2})
	assert.Equal(t, 3, op.Runs("pitr"))
	assert.Empty(t, counter.list(), "requests of the shadow server that could write")
	counter.mu.Lock()
	defer counter.mu.Unlock()
	assert.Greater(t, counter.all, 5, "the counter saw the shadow server's reads (and would have seen its writes)")
}

// TestNamespacePolicies gives two namespaces their own log defaults through the
// ConfigMap, and checks that the webhook and the reconciler both use them, that a bad
// entry is reported and changes nothing, and that a fixed entry applies.
func TestNamespacePolicies(t *testing.T) {
	ctx := t.Context()
	home, teamA, teamB := namespace(t), namespace(t), namespace(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: home, Name: "policies"},
		Data: map[string]string{teamA: "minRetryDuration: 2s\nmaxRetryTimes: 7"}}
	require.NoError(t, env.Client.Create(ctx, cm))
	port, err := testenv.FreePort()
	require.NoError(t, err)
	s, err := env.StartServer(ctx, testLog(t), func(o *app.Options) {
		o.NamespacePolicies = home + "/policies"
		o.MetricsBindAddress = fmt.Sprintf("127.0.0.1:%d", port)
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, testenv.UnregisterWebhooks(context.Background(), env.Client))
		assert.NoError(t, s.Stop())
	})
	createLog := func(ns, name string) map[string]any {
		u := fixtureBackup(t)
		u.SetNamespace(ns)
		u.SetName(name)
		unstructured.RemoveNestedField(u.Object, "status")
		unstructured.RemoveNestedField(u.Object, "spec", "backoffRetryPolicy")
		require.NoError(t, env.Client.Create(ctx, u))
		return policy(t, fetch(t, ns, name), "spec")
	}
	// Ready means the ConfigMap was read: the first create already gets the override.
	assert.Equal(t, map[string]any{"minRetryDuration": "2s", "maxRetryTimes": int64(7), "retryTimeout": "30m"}, createLog(teamA, "a1"))
	assert.Equal(t, map[string]any{"minRetryDuration": "30s", "maxRetryTimes": int64(5), "retryTimeout": "30m"}, createLog(teamB, "b1"))

	// A typo: reported on the ConfigMap and in the metric; teamA keeps 2s / 7, teamB's new
	// entry applies.
	cm.Data = map[string]string{teamA: "minRetryDuration: 2s\nmaxRetryTimes: seven", teamB: "retryTimeout: 1h"}
	require.NoError(t, env.Client.Update(ctx, cm))
	require.Eventually(t, func() bool {
		return eventNoteOf(t, home, "ConfigMap", "policies", nspolicy.ReasonInvalidNamespacePolicy) != ""
	}, 10*time.Second, 50*time.Millisecond)
	assert.Contains(t, eventNoteOf(t, home, "ConfigMap", "policies", nspolicy.ReasonInvalidNamespacePolicy), "data["+teamA+"]")
	assert.Contains(t, scrape(t, port), fmt.Sprintf(`tidb_backup_guard_namespace_policy_invalid{namespace=%q} 1`, teamA))
	require.Eventually(t, func() bool {
		return createLogProbe(t, teamB)["retryTimeout"] == "1h"
	}, 10*time.Second, 100*time.Millisecond, "teamB's new entry applies")
	assert.Equal(t, map[string]any{"minRetryDuration": "2s", "maxRetryTimes": int64(7), "retryTimeout": "30m"}, createLog(teamA, "a2"),
		"the last good policy stays in effect")

	// Fixed: applies, and the metric clears.
	cm.Data[teamA] = "maxRetryTimes: 9"
	require.NoError(t, env.Client.Update(ctx, cm))
	require.Eventually(t, func() bool { return createLogProbe(t, teamA)["maxRetryTimes"] == int64(9) }, 10*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool { return !strings.Contains(scrape(t, port), "tidb_backup_guard_namespace_policy_invalid{") },
		10*time.Second, 100*time.Millisecond, "the metric clears")
	for _, ns := range []string{teamA, teamB} {
		_, err := env.Settle(ctx, ns, testenv.SettleHold, 30*time.Second)
		require.NoError(t, err)
	}
}

// createLogProbe defaults a log Backup with a server-side dry run (nothing stored) and
// returns its policy.
func createLogProbe(t *testing.T, ns string) map[string]any {
	t.Helper()
	u := fixtureBackup(t)
	u.SetNamespace(ns)
	u.SetName("probe")
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "spec", "backoffRetryPolicy")
	require.NoError(t, env.Client.Create(t.Context(), u, client.DryRunAll))
	p, _, _ := unstructured.NestedMap(u.Object, "spec", "backoffRetryPolicy")
	return p
}

// TestNamespacePolicyInTheReconciler: a log Backup that never met the webhook is retried
// under its namespace's override (one retry, 1s), not the server's 30s / 5.
func TestNamespacePolicyInTheReconciler(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	op := operator(t)
	ctx := t.Context()
	home := namespace(t)
	require.NoError(t, env.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: home, Name: "policies"},
		Data: map[string]string{op.Namespace: "minRetryDuration: 1s\nmaxRetryTimes: 1\nretryTimeout: 1m"}}))
	r, err := env.StartReconciler(ctx, testLog(t), scoped(t, func(o *app.Options) { o.NamespacePolicies = home + "/policies" }))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, r.Stop()) })
	op.Script("pitr", testenv.BRError, testenv.BRError)
	b := richLogBackup(t, "pitr", map[string]any{})
	unstructured.RemoveNestedField(b.Object, "spec", "backoffRetryPolicy")
	require.NoError(t, op.Start(ctx, b))
	got := eventually(t, op.Namespace, "pitr", 30*time.Second, "gives up after the namespace's one retry", gaveUp)
	// explain, reading the same ConfigMap, names the namespace's defaults as the source.
	x := explainJSON(t, op.Namespace, "pitr", "--namespace-policies", home+"/policies")
	var values []string
	for _, f := range x.Policy.Fields {
		values = append(values, f.Value)
		assert.True(t, strings.HasPrefix(f.Source, "namespace default"), "%s: %s", f.Name, f.Source)
	}
	assert.Equal(t, []string{"1s", "1", "1m"}, values)
	assert.Equal(t, retry.ReasonRetryLimitExceeded, entryFailedReason(got))
	recs := recordsOf(t, got)
	require.Len(t, recs, 2)
	assert.Equal(t, time.Second, ts(t, recs[0].ExpectedRetryAt).Sub(ts(t, recs[0].DetectFailedAt)), "the namespace's minRetryDuration")
	settled(t, op, map[string]int{"pitr": 2})
}

func eventNoteOf(t *testing.T, ns, kind, name, reason string) string {
	t.Helper()
	list := &eventsv1.EventList{}
	require.NoError(t, env.Client.List(context.Background(), list, client.InNamespace(ns)))
	for _, e := range list.Items {
		if e.Regarding.Kind == kind && e.Regarding.Name == name && e.Reason == reason {
			return e.Note
		}
	}
	return ""
}

func scrape(t *testing.T, port int) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}
