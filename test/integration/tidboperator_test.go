package integration

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/version"

	"github.com/tidb-backup-guard/tidb-backup-guard/cmd/tidb-backup-guard/app"
	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/etcdtest"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

// The stories in this file run beside TiDB Operator's real controller-manager (v1.6.6,
// built by hack/envtest-assets.sh), which creates the Jobs, re-runs a command our
// reconciler hands back, and tracks running log backups in PD.

// realOperatorLabel marks the objects the shared controller-manager acts on (its
// -selector): the webhook suites share the API server, and their objects are not for it.
const realOperatorLabel = "test.tidb-backup-guard.io/operator"

var (
	tidbMu sync.Mutex
	tidbOp *testenv.TiDBOperator
	// realStories numbers the stories beside the real controller-manager: story n has the
	// namespace e2e-real-n, whose PD listens on a loopback address of its own (realStory).
	realStories atomic.Int32
)

// maxRealStories bounds the namespaces whose PD name the controller-manager knows from
// its start (Go's resolver may keep an old /etc/hosts for 5 seconds, so the names are
// there before any story needs one). make stress runs stories many times over: room for
// a thousand.
const maxRealStories = 1000

func realStory(n int32) (namespace, pdHost string) {
	// 127.1.0.0/16 is loopback too, and apart from the API server's 127.0.0.1.
	return fmt.Sprintf("e2e-real-%d", n), fmt.Sprintf("127.1.%d.%d", n/250, n%250+1)
}

// tidbOperator returns the shared controller-manager, started on first use (TestMain
// stops it).
func tidbOperator(t *testing.T) *testenv.TiDBOperator {
	t.Helper()
	tidbMu.Lock()
	defer tidbMu.Unlock()
	if tidbOp == nil {
		hosts := map[string]string{}
		for n := int32(1); n <= maxRealStories; n++ {
			ns, host := realStory(n)
			hosts["basic-pd."+ns] = host
		}
		var err error
		tidbOp, err = env.StartTiDBOperator(t.Context(), realOperatorLabel+"=real", hosts)
		require.NoError(t, err)
	}
	return tidbOp
}

// hasTracker reports a TiDB Operator with the log-backup tracker (v1.6.4 and later), which
// reads running log backups from PD and writes what it finds.
func hasTracker(t *testing.T) bool {
	t.Helper()
	v, err := env.TiDBOperatorVersion()
	require.NoError(t, err)
	return version.MustParseSemantic(v).AtLeast(version.MustParseSemantic("v1.6.4"))
}

// tiDBOperatorNotices is how long a story waits for TiDB Operator's tracker to write what
// it found in PD: its worst case (testenv.TiDBOperatorNoticesPD, 90 s) and room for the
// machine's load, since every story shares one controller-manager and one API server.
const tiDBOperatorNotices = testenv.TiDBOperatorNoticesPD + 30*time.Second

// stopTiDBOperator stops the shared controller-manager; the next story starts it again.
// It serves a fixed port (:6060, pprof and metrics), so only one runs on a machine at a
// time: TestDemo stops it before the demo starts its own.
func stopTiDBOperator() {
	tidbMu.Lock()
	defer tidbMu.Unlock()
	if tidbOp != nil {
		_ = tidbOp.Stop()
		tidbOp = nil
	}
}

// storyPlaces maps each running test to its story: the namespace and the PD address it was
// given. Keyed by the test itself, not its name: make stress runs the same names round
// after round (-count), and each run needs a namespace of its own.
var storyPlaces sync.Map // *testing.T -> storyPlace

type storyPlace struct{ namespace, pdHost string }

// storyOf returns the running test's story namespace and its PD address, creating the
// namespace on first use. Stories run in parallel (t.Parallel), each in a namespace of its
// own, and every reconciler a story starts watches only that namespace (scoped), so no
// story's server acts on another's Backups.
func storyOf(t *testing.T) (namespace, pdHost string) {
	t.Helper()
	if p, ok := storyPlaces.Load(t); ok {
		return p.(storyPlace).namespace, p.(storyPlace).pdHost
	}
	n := realStories.Add(1)
	require.LessOrEqual(t, n, int32(maxRealStories), "raise maxRealStories")
	ns, host := realStory(n)
	require.NoError(t, env.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	storyPlaces.Store(t, storyPlace{ns, host})
	t.Cleanup(func() { storyPlaces.Delete(t) })
	return ns, host
}

// scoped limits a server a story starts to the story's namespace, then applies edit.
func scoped(t *testing.T, edit func(*app.Options)) func(*app.Options) {
	t.Helper()
	ns, _ := storyOf(t)
	return func(o *app.Options) {
		o.WatchNamespaces = []string{ns}
		if edit != nil {
			edit(o)
		}
	}
}

// realCluster prepares a namespace for a story beside the real controller-manager: a
// Ready TidbCluster "basic", its PD (an etcd on a loopback address of its own, port 2379)
// reachable by TiDB Operator as basic-pd.<namespace>, and a Cluster that plays only
// what envtest lacks (the pod's outcome, the Job controller, the garbage collector).
// The story must end with settled, as every story does.
func realCluster(t *testing.T) (*testenv.Cluster, *clientv3.Client) {
	t.Helper()
	tidb := tidbOperator(t)
	ns, host := storyOf(t)
	_, pd := etcdtest.StartT(t, etcdtest.Options{Host: host})
	op := testenv.NewCluster(env.Client, ns)
	op.PD = pd
	require.NoError(t, testenv.CreateReadyTidbCluster(t.Context(), env.Client, op.Namespace, "basic", map[string]string{realOperatorLabel: "real"}))
	// The storage Secret the fixture names: TiDB Operator reads it into the Job's env.
	require.NoError(t, env.Client.Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: op.Namespace, Name: "s3-secret"},
		Data:       map[string][]byte{"access_key": []byte("AKIA-TEST"), "secret_key": []byte("s3-secret-value")},
	}))
	runOperator(t, op)
	t.Cleanup(func() {
		// E2E_TRACE=1 shows this for passing stories too.
		if t.Failed() || os.Getenv("E2E_TRACE") == "1" {
			t.Logf("tidb-controller-manager log (last lines about %s):\n%s", op.Namespace, logAbout(tidb.Log(), op.Namespace, 60))
			t.Logf("tidb-controller-manager's updates of Backups in %s (through the proxy):\n%s", op.Namespace, lines(tidb.Proxy.Writes(op.Namespace, "")))
		}
	})
	return op, pd
}

// entryReason is the reason of the log-start entry's condition of a type.
func entryReason(b *unstructured.Unstructured, condType string) string {
	conds, _, _ := unstructured.NestedSlice(b.Object, "status", "logSubCommandStatuses", "log-start", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == condType {
			r, _ := m["reason"].(string)
			return r
		}
	}
	return ""
}

// lines formats one item a line.
func lines[T fmt.Stringer](items []T) string {
	var b strings.Builder
	for _, i := range items {
		b.WriteString(i.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// logAbout returns the last n lines of a log that mention s.
func logAbout(log, s string, n int) string {
	var lines []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Our RetryFailed hand-off makes TiDB Operator itself re-run log-start: it creates a new
// Job after each retry the reconciler starts, and once log-start succeeds (BR registered
// the task in PD) its tracker finds the task and leaves the Backup running.
func TestRealOperatorRerunsAfterTheHandOff(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	startReconciler(t)
	op, _ := realCluster(t)
	op.Script("pitr", testenv.BRError, testenv.PodDeath, testenv.Succeed)
	require.NoError(t, op.Start(t.Context(), richLogBackup(t, "pitr", quickPolicy)))

	b := eventually(t, op.Namespace, "pitr", 60*time.Second, "log-start recovers beside the real operator",
		func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Complete" && episodeClosed(b) })
	recs := recordsOf(t, b)
	require.Len(t, recs, 2)
	assert.Contains(t, recs[0].OriginalReason, "failed to connect to PD")
	assert.Contains(t, recs[1].RetryReason, "Job backup-pitr-log-start failed while the command was Running")
	assert.Equal(t, 3, op.Runs("pitr"), "TiDB Operator created one Job per run")
	settled(t, op, map[string]int{"pitr": 2})
	b = fetch(t, op.Namespace, "pitr")
	assert.Equal(t, "Complete", entryPhase(b), "TiDB Operator's tracker found the task in PD")
	phase, _, _ := unstructured.NestedString(b.Object, "status", "phase")
	assert.Equal(t, "Running", phase)
}

// What TiDB Operator's tracker (v1.6.4+) writes about a running log backup whose task is
// gone, and what our reconciler does about it, with the kernel probe off and on: it never
// fights the operator's writes, writes no duplicate record, and comes to rest. (Tasks
// paused by an error: pause_test.go.)
func TestRealOperatorTrackerInterplay(t *testing.T) {
	t.Parallel() // a story of its own namespace (storyOf)
	for _, probe := range []bool{false, true} {
		t.Run(fmt.Sprintf("kernel probe %v", probe), func(t *testing.T) {
			t.Parallel()
			op, pd := realCluster(t)
			s, err := env.StartReconciler(t.Context(), testLog(t), scoped(t, func(o *app.Options) {
				if probe {
					o.KernelProbe = app.KernelProbePDEtcd
					o.KernelPDEndpoint = pd.Endpoints()[0]
					// As startWatchingReconciler: a reading of PD from before TiDB Operator's
					// record cannot contradict it, so a decision waits for the next reading.
					o.KernelProbeCacheTTL = 500 * time.Millisecond
				}
			}))
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, s.Stop()) })
			ctx := t.Context()
			names := []string{"healthy", "absent"}
			for _, name := range names {
				op.Script(name, testenv.Succeed)
				require.NoError(t, op.Start(ctx, richLogBackup(t, name, quickPolicy)))
			}
			for _, name := range names {
				eventually(t, op.Namespace, name, 60*time.Second, "log-start succeeds",
					func(b *unstructured.Unstructured) bool {
						return b.Object["status"] != nil && entryPhase(b) == "Complete"
					})
			}
			// The task of "absent" disappears from PD: TiDB Operator (v1.6.4+) marks the
			// Backup Failed (LogBackupTaskNotFound) and never re-runs it; we record it
			// once and keep its words.
			_, err = pd.Delete(ctx, "/tidb/br-stream/info/absent")
			require.NoError(t, err)
			tracker := hasTracker(t)
			if tracker {
				b := eventually(t, op.Namespace, "absent", tiDBOperatorNotices, "TiDB Operator marks the missing task Failed",
					func(b *unstructured.Unstructured) bool { return entryPhase(b) == "Failed" })
				assert.Equal(t, "LogBackupTaskNotFound", failedCondition(b)["reason"])
				// Our record follows once the reconciler has a reading of PD newer than
				// TiDB Operator's record (with the probe), not at once: settled() alone
				// only waits for a quiet moment, which can come before it (seen under make
				// stress when TiDB Operator read PD right after the delete and wrote at once).
				eventually(t, op.Namespace, "absent", 30*time.Second, "the failure is recorded", gaveUp)
			}

			absentRecords := 0
			if tracker {
				absentRecords = 1
			}
			backups := settled(t, op, map[string]int{"healthy": 0, "absent": absentRecords})
			assert.Equal(t, "Complete", entryPhase(backups["healthy"]), "a healthy task stays as it is")
			for _, name := range names {
				assert.True(t, episodeClosed(backups[name]) || name == "absent", "no episode of ours on %s", name)
			}
			if !tracker {
				// Before v1.6.4 nothing reads PD: the Backups look as they did.
				assert.Equal(t, "Complete", entryPhase(backups["absent"]))
				return
			}
			assert.True(t, gaveUp(backups["absent"]))
			assert.Equal(t, "LogBackupTaskNotFound", failedCondition(backups["absent"])["reason"], "TiDB Operator's words stay")
			recs := recordsOf(t, backups["absent"])
			require.NotEmpty(t, recs) // a panic here took every story of a make stress run down
			assert.Contains(t, recs[0].OriginalReason, "LogBackupTaskNotFound")
			assert.Equal(t, 1, eventReasons(t, op.Namespace, "absent")[retry.ReasonRetrySkipped])
		})
	}
}

// Beside the real controller-manager: a schedule whose log template leaves out
// backupMode gets a log Backup from TiDB Operator's schedule controller, not a snapshot
// Backup named log-<schedule>.
func TestRealOperatorMakesALogBackupFromALogTemplate(t *testing.T) {
	startWebhooks(t)
	op, _ := realCluster(t)
	schedule, err := testenv.Object(`
apiVersion: pingcap.com/v1alpha1
kind: BackupSchedule
metadata:
  name: nomode
  labels:
    ` + realOperatorLabel + `: real
spec:
  schedule: "0 2 * * *"
  maxReservedTime: 72h
  backupTemplate:
    br: {cluster: basic}
    s3: {provider: aws, bucket: backups, prefix: snap, secretName: s3-secret}
  logBackupTemplate:
    br: {cluster: basic}
    s3: {provider: aws, bucket: backups, prefix: log, secretName: s3-secret}
`)
	require.NoError(t, err)
	schedule.SetNamespace(op.Namespace)
	require.NoError(t, env.Client.Create(t.Context(), schedule))

	b := eventually(t, op.Namespace, "log-nomode", 60*time.Second, "TiDB Operator creates the schedule's log Backup",
		func(b *unstructured.Unstructured) bool { return b.GetUID() != "" })
	mode, _, _ := unstructured.NestedString(b.Object, "spec", "backupMode")
	assert.Equal(t, "log", mode, "a log backup, as the template meant")
	p, _, _ := unstructured.NestedMap(b.Object, "spec", "backoffRetryPolicy")
	assert.Equal(t, map[string]any{"minRetryDuration": "30s", "maxRetryTimes": int64(5), "retryTimeout": "30m"}, p,
		"the log retry policy came along from the template")
	settled(t, op, map[string]int{"log-nomode": 0})

	// A schedule whose maxBackups clean-up would delete its log backup is refused
	// (TestScheduleWithMaxBackupsLosesItsLogBackup shows what it does when let in).
	deleting := deletingSchedule(t, "deleting")
	deleting.SetNamespace(op.Namespace)
	err = env.Client.Create(t.Context(), deleting)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spec.maxBackups: Forbidden")
	assert.Contains(t, err.Error(), "set maxReservedTime instead")
}
