// The helpers every story shares: clients, readers of a Backup (its records, entries and
// phases), waits that check the Backup comes to rest (eventually, settled), and readers of
// Events and metrics.

package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/reconciler/retry"
	"github.com/tidb-backup-guard/tidb-backup-guard/test/testenv"
)

var schemaNamespace = corev1.SchemeGroupVersion.WithKind("Namespace")

// warningRecorder collects the API server's warnings, as kubectl would print them.
type warningRecorder struct {
	mu  sync.Mutex
	out *[]string
}

func (w *warningRecorder) HandleWarningHeader(code int, _ string, text string) {
	if code != 299 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	*w.out = append(*w.out, text)
}

// clientWithWarnings is a client that records warnings into out.
func clientWithWarnings(t *testing.T, out *[]string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = &warningRecorder{out: out}
	c, err := client.New(cfg, client.Options{})
	require.NoError(t, err)
	return c
}

// eventually polls the Backup until cond holds.
func eventually(t *testing.T, ns, name string, timeout time.Duration, what string, cond func(*unstructured.Unstructured) bool) *unstructured.Unstructured {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b := testenv.Empty(testenv.BackupGVK)
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, b)
		if err == nil && cond(b) {
			return b
		}
		if time.Now().After(deadline) {
			require.FailNow(t, "timed out: "+what, "get error: %v\nstatus: %v\nannotations: %v", err, b.Object["status"], b.GetAnnotations())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fetch(t *testing.T, ns, name string) *unstructured.Unstructured {
	t.Helper()
	return get(t, testenv.BackupGVK, ns, name)
}

// settled ends a story: every Backup in op's namespace stops changing (its
// resourceVersion holds for testenv.SettleHold while the reconciler and the operator
// still run), and each Backup named in records holds exactly that many retry records.
// It returns the settled Backups by name.
func settled(t *testing.T, op *testenv.Cluster, records map[string]int) map[string]*unstructured.Unstructured {
	t.Helper()
	backups, err := env.Settle(t.Context(), op.Namespace, testenv.SettleHold, 30*time.Second)
	require.NoError(t, err)
	for name, n := range records {
		require.Contains(t, backups, name)
		assert.Len(t, recordsOf(t, backups[name]), n, "retry records of %s once settled", name)
	}
	settledMu.Lock()
	settledNamespaces[op.Namespace] = true
	settledMu.Unlock()
	return backups
}

// eventReasons lists the reasons of the Events about a Backup, oldest first.
func eventReasons(t *testing.T, ns, name string) map[string]int {
	t.Helper()
	list := &eventsv1.EventList{}
	require.NoError(t, env.Client.List(context.Background(), list, client.InNamespace(ns)))
	out := map[string]int{}
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Regarding.Kind == "Backup" {
			n := int(1)
			if e.Series != nil {
				n = int(e.Series.Count)
			}
			out[e.Reason] += n
		}
	}
	return out
}

func entryPhase(b *unstructured.Unstructured) string {
	p, _, _ := unstructured.NestedString(b.Object, "status", "logSubCommandStatuses", "log-start", "phase")
	return p
}

func entryFailedReason(b *unstructured.Unstructured) string {
	conds, _, _ := unstructured.NestedSlice(b.Object, "status", "logSubCommandStatuses", "log-start", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Failed" {
			r, _ := m["reason"].(string)
			return r
		}
	}
	return ""
}

func episodeClosed(b *unstructured.Unstructured) bool {
	_, open := b.GetAnnotations()[retry.EpisodeAnnotation]
	return !open
}

func gaveUp(b *unstructured.Unstructured) bool {
	var ep retry.Episode
	return json.Unmarshal([]byte(b.GetAnnotations()[retry.EpisodeAnnotation]), &ep) == nil && ep.GaveUp
}

func recordsOf(t *testing.T, b *unstructured.Unstructured) []record {
	t.Helper()
	raw, _, _ := unstructured.NestedSlice(b.Object, "status", "backoffRetryStatus")
	data, err := json.Marshal(raw)
	require.NoError(t, err)
	var out []record
	require.NoError(t, json.Unmarshal(data, &out))
	return out
}

// firstRecord is the first retry record, failing the test (not panicking: a panic ends
// every story of the run) when there is none.
func firstRecord(t *testing.T, b *unstructured.Unstructured) record {
	t.Helper()
	recs := recordsOf(t, b)
	require.NotEmpty(t, recs, "no retry record")
	return recs[0]
}

func ts(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err, "time %q", s)
	return v
}

// eventMessages lists the notes of the Events of a reason about a Backup.
func eventMessages(t *testing.T, ns, name, reason string) []string {
	t.Helper()
	list := &eventsv1.EventList{}
	require.NoError(t, env.Client.List(t.Context(), list, client.InNamespace(ns)))
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == reason {
			out = append(out, e.Type+": "+e.Note)
		}
	}
	return out
}

// metricValue reads one sample (a float) from the server's /metrics at addr; false if absent.
func metricValue(t *testing.T, addr, series string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	require.NoError(t, err)
	return v, true
}

// metricsAddress is where a story's server serves /metrics: on the story's own loopback
// address, whose ports no other process uses (a free port picked on 127.0.0.1 can be taken
// before the server binds it: seen for etcd under make stress).
func metricsAddress(t *testing.T) string {
	t.Helper()
	_, host := storyOf(t)
	return host + ":8080"
}

func backupPhase(b *unstructured.Unstructured) string {
	p, _, _ := unstructured.NestedString(b.Object, "status", "phase")
	return p
}

func commandPhase(b *unstructured.Unstructured, cmd string) string {
	p, _, _ := unstructured.NestedString(b.Object, "status", "logSubCommandStatuses", cmd, "phase")
	return p
}

// metric reads one counter sample from the server's /metrics (metricValue).
func metric(t *testing.T, addr, series string) int {
	t.Helper()
	v, ok := metricValue(t, addr, series)
	require.True(t, ok, "no %s in the server's /metrics", series)
	return int(v)
}

func failedCondition(b *unstructured.Unstructured) map[string]any {
	conds, _, _ := unstructured.NestedSlice(b.Object, "status", "logSubCommandStatuses", "log-start", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Failed" {
			return m
		}
	}
	return nil
}

type record struct {
	RetryNum        int64  `json:"retryNum"`
	DetectFailedAt  string `json:"detectFailedAt"`
	ExpectedRetryAt string `json:"expectedRetryAt"`
	RealRetryAt     string `json:"realRetryAt"`
	RetryReason     string `json:"retryReason"`
	OriginalReason  string `json:"originalReason"`
}
