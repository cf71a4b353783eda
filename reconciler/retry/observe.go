package retry

import (
	"encoding/json"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
)

// backupView is what the decision needs of a Backup, read from the raw object. It is
// never written back; write.go changes the raw object field by field.
type BackupView struct {
	Namespace, Name string
	UID             types.UID
	Deleting        bool

	Mode             string
	LogSubcommand    string
	LogStop          bool
	LogTruncateUntil string
	// Cluster and ClusterNamespace locate the TidbCluster (spec.br), for the kernel probe.
	Cluster, ClusterNamespace string
	Policy                    defaults.Fields
	PolicyErrs                field.ErrorList
	// KeepSchemaDefaults is the opt-out annotation: the CRD's snapshot defaults in the
	// policy are meant, not unset.
	KeepSchemaDefaults bool

	Phase                   string
	CommitTs                string
	LogSuccessTruncateUntil string
	// LogCheckpointTs is the task's checkpoint as TiDB Operator (v1.6.4+) last read it.
	LogCheckpointTs string
	// TimeSynced is when TiDB Operator's tracker (v1.6.4+) last wrote what it read of the
	// task (it stamps every write of an error pause); whole seconds.
	TimeSynced time.Time
	// Conds are status.conditions by type; TiDB Operator keeps one per type and renews
	// a condition's time whenever status.phase moves to its type.
	Conds   map[string]Condition
	Entries map[string]EntryView
	Records []Record

	// Episode is the open retry episode (nil: none). A malformed annotation reads as none.
	Episode *Episode
}

// entryView is one command's entry of status.logSubCommandStatuses.
type EntryView struct {
	Phase string
	// Failed is the entry's Failed condition, if any (BR's error).
	Failed *Condition
	// Conds are the entry's conditions by type.
	Conds map[string]Condition
}

// latest is the time of the entry's newest condition (zero: none).
func (e EntryView) latest() time.Time {
	var t time.Time
	for _, c := range e.Conds {
		if c.Time.After(t) {
			t = c.Time
		}
	}
	return t
}

type Condition struct {
	Reason, Message string
	Time            time.Time
}

var PolicyPath = field.NewPath("spec", defaults.FieldPolicy)

// viewBackup reads the fields the decision needs. Fields of the wrong type read as unset:
// the object is TiDB Operator's, and a field this code cannot read is not one to act on.
func ViewBackup(u *unstructured.Unstructured) *BackupView {
	obj := u.Object
	b := &BackupView{
		Namespace: u.GetNamespace(),
		Name:      u.GetName(),
		UID:       u.GetUID(),
		Deleting:  u.GetDeletionTimestamp() != nil,
		Entries:   map[string]EntryView{},
	}
	b.Mode = str(obj, "spec", "backupMode")
	b.LogSubcommand = str(obj, "spec", "logSubcommand")
	b.LogStop, _, _ = unstructured.NestedBool(obj, "spec", "logStop")
	b.LogTruncateUntil = str(obj, "spec", "logTruncateUntil")
	b.Cluster = str(obj, "spec", "br", "cluster")
	if b.ClusterNamespace = str(obj, "spec", "br", "clusterNamespace"); b.ClusterNamespace == "" {
		b.ClusterNamespace = b.Namespace
	}
	policy, _, _ := unstructured.NestedFieldNoCopy(obj, "spec", defaults.FieldPolicy)
	b.Policy, b.PolicyErrs = defaults.ReadFields(policy, PolicyPath)

	b.Phase = str(obj, "status", "phase")
	b.CommitTs = str(obj, "status", "commitTs")
	b.LogSuccessTruncateUntil = str(obj, "status", "logSuccessTruncateUntil")
	b.LogCheckpointTs = str(obj, "status", "logCheckpointTs")
	b.TimeSynced = parseTime(str(obj, "status", "timeSynced"))
	status, _, _ := unstructured.NestedMap(obj, "status")
	b.Conds = conditions(status)
	entries, _, _ := unstructured.NestedMap(obj, "status", "logSubCommandStatuses")
	for cmd, v := range entries {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		e := EntryView{Phase: str(m, "phase")}
		e.Conds = conditions(m)
		if c, ok := e.Conds[PhaseFailed]; ok {
			e.Failed = &c
		}
		b.Entries[cmd] = e
	}
	records, _, _ := unstructured.NestedSlice(obj, "status", "backoffRetryStatus")
	for _, v := range records {
		if m, ok := v.(map[string]any); ok {
			b.Records = append(b.Records, readRecord(m))
		}
	}
	b.KeepSchemaDefaults = u.GetAnnotations()[defaults.KeepSchemaDefaultsAnnotation] == "true"
	if raw, ok := u.GetAnnotations()[EpisodeAnnotation]; ok {
		var ep Episode
		if json.Unmarshal([]byte(raw), &ep) == nil && ep.Command != "" {
			b.Episode = &ep
		}
	}
	return b
}

func str(obj map[string]any, path ...string) string {
	s, _, _ := unstructured.NestedString(obj, path...)
	return s
}

// conditions reads m's "conditions" list by type (True ones only); TiDB Operator keeps
// one per type.
func conditions(m map[string]any) map[string]Condition {
	list, _, _ := unstructured.NestedSlice(m, "conditions")
	out := map[string]Condition{}
	for _, v := range list {
		c, ok := v.(map[string]any)
		if !ok || str(c, "status") == string(corev1.ConditionFalse) {
			continue
		}
		if _, seen := out[str(c, "type")]; seen {
			continue // the first of a type, as TiDB Operator reads it
		}
		out[str(c, "type")] = Condition{Reason: str(c, "reason"), Message: str(c, "message"), Time: parseTime(str(c, "lastTransitionTime"))}
	}
	return out
}

func readRecord(m map[string]any) Record {
	r := Record{
		DetectFailedAt: parseTime(str(m, "detectFailedAt")),
		RetryReason:    str(m, "retryReason"),
		OriginalReason: str(m, "originalReason"),
	}
	switch n := m["retryNum"].(type) {
	case int64:
		r.RetryNum = n
	case float64:
		r.RetryNum = int64(n)
	case string:
		r.RetryNum, _ = strconv.ParseInt(n, 10, 64)
	}
	if t := parseTime(str(m, "expectedRetryAt")); !t.IsZero() {
		r.ExpectedRetryAt = &t
	}
	if t := parseTime(str(m, "realRetryAt")); !t.IsZero() {
		r.RealRetryAt = &t
	}
	return r
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// jobView is what the decision needs of the current command's Job.
type JobView struct {
	Name string
	UID  types.UID
	// Owned: the Job's controller is this Backup (by UID). Others are never touched.
	Owned    bool
	Deleting bool
	// Failed is the Job's Failed=True condition, if any.
	Failed *Condition
}

func ViewJob(j *batchv1.Job, backupUID types.UID) *JobView {
	v := &JobView{Name: j.Name, UID: j.UID, Deleting: j.DeletionTimestamp != nil}
	if ref := metav1.GetControllerOf(j); ref != nil && ref.UID == backupUID {
		v.Owned = true
	}
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			v.Failed = &Condition{Reason: c.Reason, Message: c.Message, Time: c.LastTransitionTime.Time}
		}
	}
	return v
}

// podTerminated reports a pod that can no longer run BR: it finished, or it is gone.
func PodTerminated(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}
